#!/usr/bin/env python3
"""pyoci convert against skopeo on the same docker-archive, in the same run, alternating.

For each layer (built by make_layers.py: ``usr`` = real files from /usr, ``mixed`` = synthetic) and
each case, runs the pyoci command and the peer command one after the other, ``--runs`` times, as
whole processes under ``/usr/bin/time -v``, and reports medians of wall time, CPU seconds, peak RSS,
the output layer size, and the pyoci/skopeo wall-time ratio. Sizes that do not fit on the disk
(archive + layer + two outputs + 1 GiB) are skipped with a message.

Cases:
  gzip, zstd, none       file input, the given output compression (skopeo: --dest-compress-format)
  stdin-gzip, stdin-zstd stdin input (skopeo cannot read a pipe: its file-input figure is the peer)
  small                  200 layers of 1 MiB (Nix layered images): per-layer overhead against one
                         layer of the same 200 MiB, both gzip
  threads                gzip at --threads 1 and 2 (byte-identical outputs checked)

Examples:
  python -m benchmarks --size 1G --runs 5
  python -m benchmarks --kind usr mixed --size 64M 1G 8G --cases gzip none --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import make_layers
from benchmarks.skopeo_baseline import make_docker_archive

PYOCI = [sys.executable, "-m", "pyoci"]


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    out_bytes: int
    layer_digests: tuple[str, ...]


@dataclass
class Row:
    case: str
    tool: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def timed(cmd: list[str], stdin_path: Path | None = None) -> tuple[float, float, float]:
    """Run ``cmd`` under /usr/bin/time -v; return (wall s, user+sys s, max RSS MiB)."""
    full = ["/usr/bin/time", "-v", *cmd] if Path("/usr/bin/time").exists() else cmd
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        proc = subprocess.run(full, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
    finally:
        if stdin_path:
            stdin.close()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")

    def grab(pattern: str) -> float:
        m = re.search(pattern, proc.stderr)
        return float(m.group(1)) if m else float("nan")

    cpu = grab(r"User time \(seconds\): ([\d.]+)") + grab(r"System time \(seconds\): ([\d.]+)")
    return wall, cpu, grab(r"Maximum resident set size \(kbytes\): (\d+)") / 1024


def layers_of(layout: Path) -> tuple[int, tuple[str, ...]]:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
    return sum(layer["size"] for layer in manifest["layers"]), tuple(layer["digest"] for layer in manifest["layers"])


def measure(cmd: list[str], out: Path, stdin_path: Path | None = None) -> Run:
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, rss = timed(cmd, stdin_path)
    size, digests = layers_of(out)
    shutil.rmtree(out, ignore_errors=True)
    return Run(wall, cpu, rss, size, digests)


def pyoci_cmd(source: str, out: Path, compression: str, threads: int | None = None) -> list[str]:
    cmd = [*PYOCI, "convert", "-q", "--compression", compression, source, f"oci:{out}:bench"]
    return cmd + (["--threads", str(threads)] if threads else [])


def skopeo_cmd(archive: Path, out: Path, compression: str) -> list[str]:
    fmt = ["--dest-compress-format", compression] if compression != "none" else ["--dest-decompress"]
    return ["skopeo", "copy", "-q", *fmt, f"docker-archive:{archive}", f"oci:{out}:bench"]


def small_layers_archives(layer: Path, workdir: Path, count: int = 200, size: int = 1 << 20) -> tuple[Path, Path]:
    """Two archives from the same bytes: ``count`` layers of ``size`` bytes, and one layer of all of them."""
    many, one = workdir / f"small-{count}x{size >> 20}M.tar", workdir / f"one-{count}x{size >> 20}M.tar"
    if many.exists() and one.exists():
        return many, one
    pieces = []
    with open(layer, "rb") as f:
        while len(pieces) < count:  # wrap around a layer smaller than count * size
            piece = f.read(size)
            if len(piece) < size:
                f.seek(0)
                piece += f.read(size - len(piece))
            pieces.append(piece)

    def wrap(files: list[bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for i, data in enumerate(files):
                info = tarfile.TarInfo(f"f{i:04d}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    for path, layers in ((many, [wrap([p]) for p in pieces]), (one, [wrap(pieces)])):
        diff_ids = [f"sha256:{hashlib.sha256(x).hexdigest()}" for x in layers]
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        ).encode()
        names = [f"{d[7:]}.tar" for d in diff_ids]
        manifest = json.dumps([{"Config": "config.json", "RepoTags": ["bench:1"], "Layers": names}]).encode()
        with tarfile.open(path, "w") as tar:
            for name, data in [*zip(names, layers, strict=True), ("config.json", config), ("manifest.json", manifest)]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return many, one


def run_cases(archive: Path, layer: Path, cases: list[str], runs: int, workdir: Path) -> list[Row]:
    out_p, out_s = workdir / "out-pyoci", workdir / "out-skopeo"
    have_skopeo = shutil.which("skopeo") is not None
    rows: list[Row] = []
    for case in cases:
        plan: list[tuple[str, list[str], Path, Path | None]] = []
        if case in ("gzip", "zstd", "none"):
            plan.append(("pyoci", pyoci_cmd(str(archive), out_p, case), out_p, None))
            if have_skopeo:
                plan.append(("skopeo", skopeo_cmd(archive, out_s, case), out_s, None))
        elif case.startswith("stdin-"):
            codec = case.removeprefix("stdin-")
            plan.append(("pyoci stdin", pyoci_cmd("-", out_p, codec), out_p, archive))
            plan.append(("pyoci file", pyoci_cmd(str(archive), out_p, codec), out_p, None))
        elif case == "threads":
            for t in (1, 2):
                plan.append((f"pyoci --threads {t}", pyoci_cmd(str(archive), out_p, "gzip", t), out_p, None))
        elif case == "small":
            many, one = small_layers_archives(layer, workdir)
            plan.append(("pyoci 200x1MiB", pyoci_cmd(str(many), out_p, "gzip"), out_p, None))
            plan.append(("pyoci 1x200MiB", pyoci_cmd(str(one), out_p, "gzip"), out_p, None))
            if have_skopeo:
                plan.append(("skopeo 200x1MiB", skopeo_cmd(many, out_s, "gzip"), out_s, None))
                plan.append(("skopeo 1x200MiB", skopeo_cmd(one, out_s, "gzip"), out_s, None))
        else:
            raise SystemExit(f"unknown case {case}")
        case_rows = [Row(case, tool) for tool, *_ in plan]
        for _ in range(runs):  # alternate the tools within each round
            for row, (_, cmd, out, stdin) in zip(case_rows, plan, strict=True):
                row.runs.append(measure(cmd, out, stdin))
                print(f"  {case:10} {row.tool:18} {row.runs[-1].wall:7.2f}s", file=sys.stderr)
        rows += case_rows
    return rows


def table(rows: list[Row], label: str) -> str:
    lines = [
        f"### {label}",
        "",
        "| case | tool | wall s (median) | runs | CPU s | peak RSS MiB | output bytes | wall vs first row of case |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    first: dict[str, float] = {}
    for row in rows:
        wall = row.median("wall")
        first.setdefault(row.case, wall)
        detail = ", ".join(f"{r.wall:.2f}" for r in row.runs)
        ratio = wall / first[row.case]
        distinct = {r.layer_digests for r in row.runs}
        deterministic = (
            "" if len(distinct) == 1 else f" (digests differ between runs: {sorted(len(d) for d in distinct)} layers)"
        )
        lines.append(
            f"| {row.case} | {row.tool} | {wall:.2f} | {detail} | {row.median('cpu'):.2f} "
            f"| {max(r.rss_mib for r in row.runs):.1f} "
            f"| {row.runs[0].out_bytes:,}{deterministic} | {ratio:.2f}x |"
        )
    for case in dict.fromkeys(r.case for r in rows):
        tools = [r for r in rows if r.case == case]
        if case == "small" and len(tools) >= 2:
            per_layer = (tools[0].median("wall") - tools[1].median("wall")) / 200 * 1000
            lines.append(f"\nsmall: pyoci overhead per layer = {per_layer:.1f} ms ((200x1MiB - 1x200MiB) / 200)")
        if case == "threads" and len({r.runs[0].layer_digests for r in tools}) == 1:
            lines.append("\nthreads: outputs byte-identical at --threads 1 and 2")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", nargs="+", choices=("usr", "mixed"), default=["usr"])
    ap.add_argument("--size", nargs="+", default=["1G"])
    ap.add_argument("--cases", nargs="+", default=["gzip", "zstd", "none", "stdin-gzip", "small", "threads"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="/tmp/pyoci-bench")
    args = ap.parse_args(argv)
    workdir = Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; skopeo: {shutil.which('skopeo') or 'absent'}"
    )
    for kind in args.kind:
        for size_text in args.size:
            size = make_layers.parse_size(size_text)
            free = shutil.disk_usage(workdir).free
            if free < 4.2 * size + (1 << 30):
                print(f"skipping {kind} {size_text}: needs {4.2 * size / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
                continue
            layer = workdir / f"{kind}-{size_text}.tar"
            if not layer.exists():
                builder = make_layers.build_usr if kind == "usr" else make_layers.build_mixed
                extra = 8 if kind == "usr" else 20240601
                builder(str(layer), size, extra)
            archive = layer.with_suffix(".docker-archive.tar")
            if not archive.exists():
                make_docker_archive(str(layer), str(archive))
            rows = run_cases(archive, layer, args.cases, args.runs, workdir)
            print(table(rows, f"{kind} layer, {size_text} ({layer.stat().st_size:,} bytes), {args.runs} runs"))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
