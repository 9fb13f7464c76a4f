"""Static-tree publishing: ``pyoci sync`` to moto's S3 server (first, unchanged, after gc) and ``pyoci gc``.

Builds a tree of ``--tags`` versions of a two-platform image (a base layer per platform shared by every
version, an incompressible app layer per version and platform), then times whole ``pyoci`` processes:

    python -m benchmarks.bench_static --tags 20 --layer 1M --jobs 1 8

moto's server (``moto_server``, from the test extras) runs as a child process on a free port.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def layer(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def archive(path: Path, arch: str, variant: str | None, version: int, app_size: int) -> None:
    rng = random.Random(f"{arch}-{version}")
    base = layer("base", random.Random(arch).randbytes(4 * app_size))
    app = layer("app", rng.randbytes(app_size))
    layers = [base, app]
    config: dict[str, object] = {"architecture": arch, "os": "linux", "created": f"2024-01-01T00:{version:02d}:00Z"}
    if variant:
        config["variant"] = variant
    config["rootfs"] = {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(x).hexdigest()}" for x in layers]}
    raw = json.dumps(config).encode()
    names = [f"{hashlib.sha256(x).hexdigest()}.tar" for x in layers]
    manifest = json.dumps([{"Config": "c.json", "RepoTags": [f"bench/app:{version}"], "Layers": names}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [*zip(names, layers, strict=True), ("c.json", raw), ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


def pyoci(*args: str) -> tuple[float, dict[str, object]]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pyoci", *args], capture_output=True, timeout=3600)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"pyoci {' '.join(args)} failed: {proc.stderr.decode()}")
    return elapsed, json.loads(proc.stdout) if proc.stdout.strip().startswith(b"{") else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--layer", default="1M", help="app layer size per version and platform (base: 4x)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--keep-last", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    import boto3

    work = Path(tempfile.mkdtemp(prefix="pyoci-bench-static-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    moto = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        tree = work / "site"
        for version in range(1, args.tags + 1):
            tars = []
            for arch, variant in (("amd64", None), ("arm64", "v8")):
                path = work / f"{arch}-{version}.tar"
                archive(path, arch, variant, version, size(args.layer))
                tars.append(str(path))
            subprocess.run(
                [sys.executable, "-m", "pyoci", "merge", "-q", *tars, f"oci:{work / 'layout'}:{version}"],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pyoci",
                    "push",
                    "-q",
                    f"oci:{work / 'layout'}:{version}",
                    f"static:{tree}:bench/app:{version}",
                ],
                check=True,
                capture_output=True,
            )
        files = [p for p in (tree / "v2").rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        for _ in range(100):
            try:
                s3 = boto3.client("s3", endpoint_url=endpoint)
                s3.list_buckets()
                break
            except Exception:  # noqa: BLE001 - the server is starting
                time.sleep(0.1)
        print(f"tree: {args.tags} tags, {len(files)} objects, {total / 2**20:.1f} MiB")
        print("| step | jobs | wall s | uploaded | copied | skipped | deleted | MiB sent |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

        def row(step: str, jobs: int, elapsed: float, out: dict[str, object]) -> None:
            sent = int(out.get("bytes", 0)) / 2**20  # type: ignore[call-overload]
            counts = " | ".join(str(out.get(k, "")) for k in ("uploaded", "copied", "skipped", "deleted"))
            print(f"| {step} | {jobs} | {elapsed:.2f} | {counts} | {sent:.1f} |", flush=True)

        def sync(source: Path, jobs: int) -> tuple[float, dict[str, object]]:
            """``pyoci sync`` of ``source`` into the bucket of ``jobs`` (one bucket per --jobs value)."""
            target = (f"static:{source}", f"s3://bench-{jobs}", "--endpoint-url", endpoint)
            return pyoci("sync", "--json", "-q", "--jobs", str(jobs), *target)

        for jobs in args.jobs:
            s3.create_bucket(Bucket=f"bench-{jobs}")
            row("first sync", jobs, *sync(tree, jobs))
            row("second sync (unchanged)", jobs, *sync(tree, jobs))
        copy = work / "gc-tree"
        shutil.copytree(tree, copy, symlinks=True)
        elapsed, out = pyoci("gc", "--json", "--keep-last", str(args.keep_last), f"static:{copy}")
        print(
            f"\ngc --keep-last {args.keep_last}: {elapsed:.2f} s, {len(out['removed'])} files removed, "  # type: ignore[arg-type]
            f"{int(out['freed']) / 2**20:.1f} MiB freed"
        )  # type: ignore[call-overload]
        row("sync after gc", args.jobs[-1], *sync(copy, args.jobs[-1]))
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
