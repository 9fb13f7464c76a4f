#!/usr/bin/env python3
"""Do the compressed bytes depend on the CPU? Compress one sample under emulated CPU models.

libdeflate (gzip) and libzstd pick SIMD or BMI2 code at run time. This runs pyoci's own
writers natively and under ``qemu-x86_64 -cpu MODEL`` (Debian package ``qemu-user``; TCG emulates no
AVX-512) and prints the sha256 of each output, so a difference shows which levels are CPU-dependent.

Example:
  python benchmarks/cpu_dispatch.py /tmp/pyoci-bench/usr-64M.tar --models core2duo-v1 Nehalem-v1 Haswell-v1 EPYC-v1
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys

SAMPLE_BYTES = 12_000_000
CASES = [("gzip", 1), ("gzip", 2), ("gzip", 6), ("gzip", 12), ("zstd", 3), ("zstd", 9)]


def digests(sample: str) -> None:
    from pyoci.compression import Compression, open_writer

    with open(sample, "rb") as f:
        data = f.read(SAMPLE_BYTES)
    for codec, level in CASES:
        out = io.BytesIO()
        writer = open_writer(Compression(codec), out, level, 2)
        writer.write(data)
        writer.close()
        print(f"{codec} {level} {hashlib.sha256(out.getvalue()).hexdigest()[:16]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sample", help="a layer tar (its first 12 MB are used: beyond one 8 MiB zstd window)")
    ap.add_argument("--models", nargs="+", default=["core2duo-v1", "Nehalem-v1", "Haswell-v1", "EPYC-v1"])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        digests(args.sample)
        return 0
    runs = {"native": [sys.executable, __file__, "--child", args.sample]}
    qemu = shutil.which("qemu-x86_64")
    python = os.path.realpath(sys.executable)  # the base interpreter: sys.path comes in PYTHONPATH
    for model in args.models if qemu else []:
        runs[model] = [qemu, "-cpu", model, python, __file__, "--child", args.sample]
    paths = ":".join(p for p in sys.path if p)
    for name, cmd in runs.items():
        proc = subprocess.run(cmd, capture_output=True, text=True, env={"PYTHONPATH": paths})
        print(f"== {name}\n{proc.stdout.strip() or proc.stderr.strip()[-500:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
