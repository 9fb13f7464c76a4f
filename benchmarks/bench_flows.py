#!/usr/bin/env python3
"""pyoci merge (four platforms) and push (to a local distribution registry) against skopeo.

merge4: four single-platform images whose layers differ (``mixed`` layers from make_layers.py with
four seeds). Timed, alternating: ``pyoci merge`` of the four converted layouts (hard links and a
hash check of every blob), ``pyoci merge`` straight from the four archives, and, as the peer, the
copy step of the hand-made flow: ``skopeo copy`` of each archive into one layout (the ``jq`` step
that follows is not timed).

push: one converted layout pushed to ``docker-registry`` on 127.0.0.1 (a fresh registry each round,
so nothing is skipped or mounted) by ``pyoci push`` and by ``skopeo copy oci:... docker://...``.

Example:
  python -m benchmarks.bench_flows --size 1G --runs 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import make_layers
from benchmarks.bench_convert import PYOCI, Row, Run, timed
from benchmarks.skopeo_baseline import make_docker_archive

if TYPE_CHECKING:
    from support.registry import Registry

ARCHES = [("amd64", ""), ("arm64", "v8"), ("arm", "v7"), ("386", "")]


def start_registry(workdir: Path) -> Registry:
    """The test suite's ``docker-registry`` on a free loopback port, storage in ``workdir``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support import registry

    return registry.start_registry(workdir)


@contextmanager
def fresh_registry(workdir: Path) -> Iterator[Registry]:
    """A new registry with new storage (under ``workdir``), stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        registry = start_registry(Path(tmp))
        try:
            yield registry
        finally:
            registry.stop()


def platform_archives(workdir: Path, size: int, size_text: str) -> tuple[list[Path], list[tuple[str, str]]]:
    archives = []
    for seed, (arch, variant) in enumerate(ARCHES):
        layer = workdir / f"mixed-{size_text}-seed{seed}.tar"
        if not layer.exists():
            make_layers.build_mixed(str(layer), size, 1000 + seed)
        archive = workdir / f"mixed-{size_text}-{arch}.docker-archive.tar"
        if not archive.exists():
            make_docker_archive(str(layer), str(archive), arch, variant)
        archives.append(archive)
    return archives, ARCHES


def run_timed(row: Row, cmd: list[str], out: Path | None) -> None:
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    wall, cpu, rss = timed(cmd)
    row.runs.append(Run(wall, cpu, rss, 0, ()))
    print(f"  {row.case:8} {row.tool:34} {wall:7.2f}s", file=sys.stderr)


def merge4(workdir: Path, size: int, size_text: str, runs: int) -> list[Row]:
    archives, arches = platform_archives(workdir, size, size_text)
    layouts = []
    for archive, (arch, _) in zip(archives, arches, strict=True):
        layout = workdir / f"layout-{size_text}-{arch}"
        if not (layout / "index.json").exists():
            subprocess.run([*PYOCI, "convert", "-q", str(archive), f"oci:{layout}:bench"], check=True)
        layouts.append(layout)
    out = workdir / "merge-out"
    rows = [Row("merge4", "pyoci merge (4 layouts)"), Row("merge4", "pyoci merge (4 archives, gzip)")]
    plan = [
        (rows[0], [*PYOCI, "merge", "-q", *[f"oci:{x}:bench" for x in layouts], f"oci:{out}:multi"], out),
        (rows[1], [*PYOCI, "merge", "-q", *map(str, archives), f"oci:{out}:multi"], out),
    ]
    if shutil.which("skopeo"):
        rows.append(Row("merge4", "skopeo copy x4 (hand-made flow)"))
        script = "; ".join(
            f"skopeo copy -q docker-archive:{a} oci:{out}:{arch}" for a, (arch, _) in zip(archives, arches, strict=True)
        )
        plan.append((rows[2], ["sh", "-ec", f"rm -rf {out}; {script}"], out))
    for _ in range(runs):
        for row, cmd, target in plan:
            run_timed(row, cmd, target)
    shutil.rmtree(out, ignore_errors=True)
    return rows


def push(workdir: Path, size_text: str, runs: int) -> list[Row]:
    if not shutil.which("docker-registry"):
        print("skipping push: docker-registry is not installed")
        return []
    layout = workdir / f"layout-{size_text}-amd64"
    rows = [Row("push", "pyoci push"), Row("push", "skopeo copy oci: docker://")]
    for _ in range(runs):
        # a fresh registry each round: skopeo's blob-info cache would otherwise mount the blobs it
        # pushed in an earlier round instead of uploading them
        with fresh_registry(workdir) as registry:
            run_timed(rows[0], [*PYOCI, "push", "-q", f"oci:{layout}:bench", f"docker://{registry.host}/p:1"], None)
            if shutil.which("skopeo"):
                source, dest = f"oci:{layout}:bench", f"docker://{registry.host}/s:1"
                run_timed(rows[1], ["skopeo", "copy", "-q", "--dest-tls-verify=false", source, dest], None)
    return [row for row in rows if row.runs]


def main(argv: list[str] | None = None) -> int:
    from benchmarks.bench_convert import table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="size of each platform's layer")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="/tmp/pyoci-bench")
    args = ap.parse_args(argv)
    workdir = Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    size = make_layers.parse_size(args.size)
    if shutil.disk_usage(workdir).free < 14 * size + (1 << 30):
        print(f"skipping: four platforms of {args.size} need about {14 * size / 2**30:.0f} GiB free")
        return 0
    rows = merge4(workdir, size, args.size, args.runs) + push(workdir, args.size, args.runs)
    print(table(rows, f"merge of four platforms and push, {args.size} mixed layer per platform, {args.runs} runs"))
    print(json.dumps({"note": "output bytes are not measured for these flows"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
