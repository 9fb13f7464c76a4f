#!/usr/bin/env python3
"""pyoci build of a four-platform image from one binary per platform, against convert + merge of archives.

Inputs (made once, deterministically, not timed): four "static binaries" of ``--size`` bytes each,
one per platform (``ARCHES``), of mixed compressibility (a third random bytes, the rest repeated
text-like blocks, about 2.4x with gzip), and for the peer flows four equivalent docker-archives
(the same file at ``/usr/bin/app``, as one layer written by pyoci's own tar writer, so every flow
writes the same layer bytes).

Timed, alternating within each round, each as whole processes under ``/usr/bin/time -v``:

* ``pyoci build``: one command, four ``--platform`` and one ``--add 'bin/app-{arch}{variant}:/usr/bin/app'``;
* ``convert x4 + merge``: four ``pyoci convert`` into layouts, then ``pyoci merge`` of them (the
  hand-made flow when Docker or Nix made the archives);
* ``merge of 4 archives``: one ``pyoci merge`` that converts the archives on the fly.

``crane append``/``crane mutate`` and ``ko`` are Go programs that no package registry reachable here
ships, so they are not measured.

Example:
  python -m benchmarks.bench_build --size 50M --runs 5
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

from benchmarks import make_layers
from benchmarks.bench_convert import PYOCI, Row, Run, table, timed
from benchmarks.skopeo_baseline import make_docker_archive
from pyoci.tarwrite import Stamp, TarStream, parent_entries, tree_entries

ARCHES = [("amd64", ""), ("arm64", ""), ("arm", "v7"), ("386", "")]
BLOCK = 64 << 10


def make_binary(path: Path, size: int, seed: int) -> None:
    """``size`` bytes: per 64 KiB block, random bytes one time in three, else a repeated text-like block."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(range(97, 123), k=rng.randint(3, 12))) for _ in range(400)]
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(BLOCK, left)
            if rng.random() < 1 / 3:
                block = rng.randbytes(n)
            else:
                block = (b" ".join(rng.choices(words, k=n // 4)) + b"\n" * n)[:n]
            out.write(block)
            left -= n
    path.chmod(0o755)


def inputs(workdir: Path, size: int, size_text: str) -> tuple[Path, list[Path]]:
    binaries = workdir / f"bin-{size_text}"
    binaries.mkdir(parents=True, exist_ok=True)
    archives = []
    for seed, (arch, variant) in enumerate(ARCHES):
        binary = binaries / f"app-{arch}{variant}"
        if not binary.exists():
            make_binary(binary, size, 2000 + seed)
        layer = workdir / f"app-{size_text}-{arch}{variant}.tar"
        archive = workdir / f"app-{size_text}-{arch}{variant}.docker-archive.tar"
        if not archive.exists():
            entries = tree_entries(binary, "usr/bin/app", Stamp())
            stream = TarStream(entries + parent_entries([e.name for e in entries], 0), "layer")
            with open(layer, "wb") as out:
                while chunk := stream.read(1 << 20):
                    out.write(chunk)
            make_docker_archive(str(layer), str(archive), arch, variant)
            layer.unlink()
        archives.append(archive)
    return binaries, archives


def run(row: Row, cmd: list[str], out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, rss = timed(cmd)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    row.runs.append(Run(wall, cpu, rss, size, ()))
    print(f"  {row.tool:34} {wall:7.2f}s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="50M", help="size of each platform's binary")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="/tmp/pyoci-bench")
    args = ap.parse_args(argv)
    workdir = Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    size = make_layers.parse_size(args.size)
    binaries, archives = inputs(workdir, size, args.size)
    out = workdir / "build-out"
    layouts = [workdir / f"build-layout-{i}" for i in range(len(archives))]
    platforms = [a for arch, variant in ARCHES for a in ("--platform", f"linux/{arch}/{variant}".rstrip("/"))]
    build = [*PYOCI, "build", "-q", *platforms, "--add", f"{binaries}/app-{{arch}}{{variant}}:/usr/bin/app"]
    pyoci = " ".join(PYOCI)
    pairs = zip(archives, layouts, strict=True)
    converts = " && ".join(f"{pyoci} convert -q {archive} oci:{layout}:x" for archive, layout in pairs)
    merge_layouts = " ".join(f"oci:{layout}:x" for layout in layouts)
    hand = f"rm -rf {' '.join(map(str, layouts))} && {converts} && {pyoci} merge -q {merge_layouts} oci:{out}:1"
    rows = [
        (Row("build4", "pyoci build (one command)"), [*build, f"oci:{out}:1"]),
        (Row("build4", "pyoci convert x4 + merge"), ["sh", "-ec", hand]),
        (Row("build4", "pyoci merge of 4 archives"), [*PYOCI, "merge", "-q", *map(str, archives), f"oci:{out}:1"]),
    ]
    for _ in range(args.runs):
        for row, cmd in rows:
            run(row, cmd, out)
    shutil.rmtree(out, ignore_errors=True)
    for layout in layouts:
        shutil.rmtree(layout, ignore_errors=True)
    print(table([row for row, _ in rows], f"four-platform image of a {args.size} binary each, {args.runs} runs"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
