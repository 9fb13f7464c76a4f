#!/usr/bin/env python3
"""pyoci convert against skopeo on the same docker-archive, in the same run, alternating.

For each layer size (``usr`` = real files from /usr, ``mixed`` = synthetic; built by make_layers.py)
and each case, runs the pyoci command and its peers one after the other within each round, ``--runs``
rounds, as whole processes under ``/usr/bin/time -v``, and reports medians of wall time and CPU
seconds (user + sys), the largest peak RSS, the output layer size, and pyoci's ratios to the peer.

The machine may be shared: before each run the harness waits (up to ``--max-wait`` s) until the
machine has been at most ``--max-busy`` busy for a second, and it counts the CPU time that other
processes used while the run went on (from /proc/stat: all busy time minus the run's own CPU). A
run during which others used more than 0.3 s + 10 % of its wall time is *disturbed* and is done
again (``--retries`` times); the tables count the runs that stayed disturbed. Sizes that do not fit
on the disk (archive + layer + two outputs + 1 GiB) are skipped with a message.

Cases:
  gzip, zstd   file input, that output compression; peer: skopeo --dest-compress-format
  none         uncompressed output; peers: one sha256 pass over the archive (hashlib, 1 MiB reads,
               a whole process) and ``dd bs=1M conv=fsync`` of the layer (the disk's bound)
               (skopeo cannot write uncompressed OCI layers)
  stdin-gzip, stdin-zstd  stdin input (skopeo cannot read a pipe: pyoci's file input is the peer)
  small        200 layers of 1 MiB (Nix layered images): per-layer overhead against one layer of the
               same 200 MiB, both gzip
  layers-gzip, layers-zstd, layers-none  4 layers of 64 MiB: a layer's codec may overlap the next
               layer's, which shows in the peak RSS
  threads      gzip at --threads 1 and 2 (byte-identical outputs checked)

Examples:
  python -m benchmarks                                  # gzip, zstd, none at 256 MiB and 1 GiB, 5 rounds
  python -m benchmarks --size 8G --cases zstd none --runs 1 --no-peers   # memory at a large size
  python -m benchmarks --size 1G --cases stdin-gzip small threads --runs 3
  python -m benchmarks --baseline /tmp/pyoci-before/src      # and an older tree's pyoci, alternating
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
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
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import make_layers
from benchmarks.skopeo_baseline import make_docker_archive

PYOCI = [sys.executable, "-m", "pyoci"]
SHA256_PASS = (
    "import hashlib, sys\n"
    "h = hashlib.sha256()\n"
    "with open(sys.argv[1], 'rb', buffering=0) as f:\n"
    "    while b := f.read(1 << 20):\n"
    "        h.update(b)\n"
    "print(h.hexdigest())\n"
)
PEER_TOOLS = ("skopeo", "sha256 pass", "dd conv=fsync")


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    out_bytes: int
    layer_digests: tuple[str, ...]
    others_cpu: float = 0.0
    disturbed: bool = False
    helper_cpu: float = 0.0


@dataclass
class Row:
    case: str
    tool: str
    runs: list[Run] = field(default_factory=list)
    size: str = ""

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


@dataclass
class Quiet:
    """How to wait for, and judge, a quiet machine."""

    max_busy: float = 0.15
    max_wait: float = 120.0
    retries: int = 2


@dataclass
class Attempt:
    """What one attempt of a measured run executes, when it needs more than a fixed command."""

    cmd: list[str]
    helpers: tuple[int, ...] = ()
    """Processes serving the run (a local registry): their CPU is part of it, not a disturbance."""
    stored: Path | None = None
    """A directory whose files are the run's output (a registry's blob store), measured before it goes."""


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores; idle and iowait excluded)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + sys) process ``pid`` has used so far; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def wait_for_quiet(quiet: Quiet) -> None:
    """Wait until the machine was at most ``quiet.max_busy`` busy (0..1 of all cores) over 1 s."""
    deadline = time.monotonic() + quiet.max_wait
    cores = os.cpu_count() or 1
    while True:
        b0 = busy_seconds()
        time.sleep(1.0)
        if (busy_seconds() - b0) / cores <= quiet.max_busy or time.monotonic() >= deadline:
            return
        time.sleep(2.0)


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


def remove(path: Path | None) -> None:
    if path is not None and path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path is not None:
        path.unlink(missing_ok=True)


def measure(
    cmd: list[str] | Callable[[], AbstractContextManager[Attempt]],
    out: Path | None,
    quiet: Quiet,
    stdin_path: Path | None = None,
) -> Run:
    """One run of ``cmd`` on a quiet machine, redone up to ``quiet.retries`` times while disturbed.

    ``cmd`` is a command, or a factory of a context that prepares each attempt afresh (a new registry)
    and gives what it runs. ``out`` is the OCI layout the command writes (its layers are measured, then
    it is removed), or a plain file (its size is measured), or None.
    """
    for attempt in range(quiet.retries + 1):
        remove(out)
        with cmd() if callable(cmd) else nullcontext(Attempt(cmd)) as run_of:
            wait_for_quiet(quiet)
            before, served = busy_seconds(), sum(map(process_cpu, run_of.helpers))
            wall, cpu, rss = timed(run_of.cmd, stdin_path)
            helper_cpu = sum(map(process_cpu, run_of.helpers)) - served
            others = max(0.0, busy_seconds() - before - cpu - helper_cpu)
            stored = tree_bytes(run_of.stored) if run_of.stored else 0
        disturbed = others > 0.3 + 0.1 * wall
        if not disturbed or attempt == quiet.retries:
            break
        print(f"    disturbed (others used {others:.2f} CPU s in {wall:.2f} s), again", file=sys.stderr)
    size, digests = stored, ()
    if out is not None and out.is_dir():
        size, digests = layers_of(out)
    elif out is not None and out.exists():
        size = out.stat().st_size
    remove(out)
    return Run(wall, cpu, rss, size, digests, others, disturbed, helper_cpu)


def pyoci_cmd(source: str, out: Path, compression: str, threads: int | None = None) -> list[str]:
    cmd = [*PYOCI, "convert", "-q", "--compression", compression, source, f"oci:{out}:bench"]
    return cmd + (["--threads", str(threads)] if threads else [])


def skopeo_cmd(archive: Path, out: Path, compression: str) -> list[str]:
    fmt = ["--dest-compress-format", compression]
    return ["skopeo", "copy", "-q", *fmt, f"docker-archive:{archive}", f"oci:{out}:bench"]


def small_layers_archives(layer: Path, workdir: Path, count: int = 200, size: int = 1 << 20) -> tuple[Path, Path]:
    """Two archives from the same bytes: ``count`` layers of ``size`` bytes, and one layer of all of them."""
    many, one = workdir / f"layers-{count}x{size >> 20}M.tar", workdir / f"one-{count}x{size >> 20}M.tar"
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


Plan = list[tuple[str, list[str], Path | None, Path | None]]
"""(tool, command, output to measure and remove, stdin file) for each tool of a case, in run order."""


def case_plan(case: str, archive: Path, layer: Path, workdir: Path, peers: bool, baseline: str | None) -> Plan:
    out_p, out_s, out_f = workdir / "out-pyoci", workdir / "out-skopeo", workdir / "out-dd"
    skopeo = peers and shutil.which("skopeo") is not None
    plan: Plan = []
    if case in ("gzip", "zstd", "none") and baseline:
        before = ["env", f"PYTHONPATH={baseline}", *pyoci_cmd(str(archive), out_p, case)]
        plan.append(("pyoci before", before, out_p, None))
    if case in ("gzip", "zstd"):
        plan.append(("pyoci", pyoci_cmd(str(archive), out_p, case), out_p, None))
        if skopeo:
            plan.append(("skopeo", skopeo_cmd(archive, out_s, case), out_s, None))
    elif case == "none":
        plan.append(("pyoci", pyoci_cmd(str(archive), out_p, case), out_p, None))
        if peers:
            plan.append(("sha256 pass", [sys.executable, "-c", SHA256_PASS, str(archive)], None, None))
            dd = ["dd", f"if={layer}", f"of={out_f}", "bs=1M", "conv=fsync", "status=none"]
            plan.append(("dd conv=fsync", dd, out_f, None))
    elif case.startswith("stdin-"):
        codec = case.removeprefix("stdin-")
        plan.append(("pyoci stdin", pyoci_cmd("-", out_p, codec), out_p, archive))
        plan.append(("pyoci file", pyoci_cmd(str(archive), out_p, codec), out_p, None))
    elif case == "threads":
        for t in (1, 2):
            plan.append((f"pyoci --threads {t}", pyoci_cmd(str(archive), out_p, "gzip", t), out_p, None))
    elif case.startswith("layers-"):
        codec = case.removeprefix("layers-")
        four, _ = small_layers_archives(layer, workdir, 4, 64 << 20)
        if baseline:
            before = ["env", f"PYTHONPATH={baseline}", *pyoci_cmd(str(four), out_p, codec)]
            plan.append(("pyoci before", before, out_p, None))
        plan.append(("pyoci 4x64MiB", pyoci_cmd(str(four), out_p, codec), out_p, None))
        if skopeo and codec != "none":
            plan.append(("skopeo", skopeo_cmd(four, out_s, codec), out_s, None))
    elif case == "small":
        many, one = small_layers_archives(layer, workdir)
        plan.append(("pyoci 200x1MiB", pyoci_cmd(str(many), out_p, "gzip"), out_p, None))
        plan.append(("pyoci 1x200MiB", pyoci_cmd(str(one), out_p, "gzip"), out_p, None))
        if skopeo:
            plan.append(("skopeo 200x1MiB", skopeo_cmd(many, out_s, "gzip"), out_s, None))
            plan.append(("skopeo 1x200MiB", skopeo_cmd(one, out_s, "gzip"), out_s, None))
    else:
        raise SystemExit(f"unknown case {case}")
    return plan


def run_cases(
    archive: Path,
    layer: Path,
    cases: list[str],
    runs: int,
    workdir: Path,
    quiet: Quiet,
    size: str,
    peers: bool,
    baseline: str | None = None,
) -> list[Row]:
    """Every case's tools, alternating within each round: round 1 of every case, then round 2, ..."""
    plans = {case: case_plan(case, archive, layer, workdir, peers, baseline) for case in cases}
    rows = {case: [Row(case, tool, size=size) for tool, *_ in plan] for case, plan in plans.items()}
    for round_ in range(runs):
        for case, plan in plans.items():
            for row, (_, cmd, out, stdin) in zip(rows[case], plan, strict=True):
                run = measure(cmd, out, quiet, stdin)
                row.runs.append(run)
                mark = " (disturbed)" if run.disturbed else ""
                print(
                    f"  {size:5} round {round_ + 1} {case:10} {row.tool:18} {run.wall:7.2f}s "
                    f"cpu {run.cpu:6.2f}s rss {run.rss_mib:5.1f} MiB others {run.others_cpu:5.2f}s{mark}",
                    file=sys.stderr,
                )
    return [row for case in cases for row in rows[case]]


def _ratio(row: Row, rows: list[Row]) -> str:
    """pyoci against the peers of its case (skopeo's wall time and bytes, or one sha256 pass), and
    against the baseline tree's pyoci (``pyoci before``) when there is one."""
    same = [r for r in rows if r.case == row.case and r.size == row.size]
    if row.tool in PEER_TOOLS or not same:
        return ""
    parts = []
    if row.case.removeprefix("layers-") in ("gzip", "zstd"):
        peer = next((r for r in same if r.tool == "skopeo"), None)
        if peer is not None:
            parts.append(
                f"**{row.median('wall') / peer.median('wall'):.2f}x** wall, "
                f"{row.runs[0].out_bytes / peer.runs[0].out_bytes:.3f}x bytes"
            )
    elif row.case == "none":
        parts += [f"**{row.median('wall') / r.median('wall'):.2f}x** {r.tool}" for r in same if r.tool in PEER_TOOLS]
    elif same[0] is not row and same[0].tool != "pyoci before":
        parts.append(f"{row.median('wall') / same[0].median('wall'):.2f}x {same[0].tool}")
    before = next((r for r in same if r.tool == "pyoci before"), None)
    if before is not None and row is not before and row.tool.startswith("pyoci"):
        parts.append(f"{row.median('wall') / before.median('wall'):.2f}x wall before")
    return ", ".join(parts)


def table(rows: list[Row], label: str) -> str:
    lines = [
        f"### {label}",
        "",
        "| size | case | tool | wall s (median) | runs (* disturbed) | CPU s | peak RSS MiB | output bytes | ratio |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        detail = ", ".join(f"{r.wall:.2f}{'*' if r.disturbed else ''}" for r in row.runs)
        distinct = {r.layer_digests for r in row.runs}
        deterministic = "" if len(distinct) == 1 else " (digests differ between runs)"
        lines.append(
            f"| {row.size} | {row.case} | {row.tool} | {row.median('wall'):.2f} | {detail} | {row.median('cpu'):.2f} "
            f"| {max(r.rss_mib for r in row.runs):.1f} | {row.runs[0].out_bytes:,}{deterministic} "
            f"| {_ratio(row, rows)} |"
        )
    for case in dict.fromkeys(r.case for r in rows):
        tools = [r for r in rows if r.case == case]
        if case == "small" and len(tools) >= 2:
            per_layer = (tools[0].median("wall") - tools[1].median("wall")) / 200 * 1000
            lines.append(f"\nsmall: pyoci overhead per layer = {per_layer:.1f} ms ((200x1MiB - 1x200MiB) / 200)")
        if case == "threads" and len({r.runs[0].layer_digests for r in tools}) == 1:
            lines.append("\nthreads: outputs byte-identical at --threads 1 and 2")
    return "\n".join(lines)


def compile_pyoci() -> None:
    """Byte-compile pyoci's modules, as an installed package has them: an editable checkout run with
    PYTHONDONTWRITEBYTECODE set (as some CI and sandboxes do) compiles them again in every run (~0.07 s)."""
    spec = importlib.util.find_spec("pyoci")
    assert spec is not None and spec.submodule_search_locations
    subprocess.run([sys.executable, "-m", "compileall", "-q", *spec.submodule_search_locations], check=True)


def machine() -> str:
    versions = []
    for name in ("zstandard", "deflate", "isal"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except (ImportError, AttributeError):
            versions.append(f"{name} absent")
    skopeo = shutil.which("skopeo")
    if skopeo:
        versions.append(subprocess.run([skopeo, "--version"], capture_output=True, text=True).stdout.strip())
    return f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; " + "; ".join(versions)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", nargs="+", choices=("usr", "mixed"), default=["usr"])
    ap.add_argument("--size", nargs="+", default=["256M", "1G"])
    ap.add_argument("--cases", nargs="+", default=["gzip", "zstd", "none"])
    ap.add_argument("--runs", type=int, default=5, help="rounds; each round runs every tool of every case once")
    ap.add_argument("--out", default="/tmp/pyoci-bench")
    ap.add_argument("--no-peers", action="store_true", help="pyoci only (e.g. memory at sizes skopeo was not run)")
    ap.add_argument("--max-busy", type=float, default=Quiet.max_busy, help="quiet: at most this busy (0..1)")
    ap.add_argument("--max-wait", type=float, default=Quiet.max_wait, help="seconds to wait for quiet")
    ap.add_argument("--retries", type=int, default=Quiet.retries, help="re-runs of a disturbed run")
    ap.add_argument("--json", help="also write every run to this file")
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="also run another tree's pyoci (PYTHONPATH=SRC, e.g. a checkout's src/) as 'pyoci before'",
    )
    args = ap.parse_args(argv)
    quiet = Quiet(args.max_busy, args.max_wait, args.retries)
    workdir = Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"command: python -m benchmarks {' '.join(sys.argv[1:] if argv is None else argv)}\n")
    results: list[Row] = []
    for kind in args.kind:
        rows: list[Row] = []
        for size_text in args.size:
            size = make_layers.parse_size(size_text)
            free = shutil.disk_usage(workdir).free
            layer = workdir / f"{kind}-{size_text}.tar"
            archive = layer.with_suffix(".docker-archive.tar")
            needed = 2.2 * size + (0 if layer.exists() else size) + (0 if archive.exists() else size) + (1 << 30)
            if free < needed:
                print(f"skipping {kind} {size_text}: needs {needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
                continue
            if not layer.exists():
                builder = make_layers.build_usr if kind == "usr" else make_layers.build_mixed
                extra = 8 if kind == "usr" else 20240601
                builder(str(layer), size, extra)
            if not archive.exists():
                make_docker_archive(str(layer), str(archive))
            rows += run_cases(
                archive, layer, args.cases, args.runs, workdir, quiet, size_text, not args.no_peers, args.baseline
            )
        if rows:
            print(table(rows, f"{kind} layers, {args.runs} rounds"))
            print()
        results += [Row(r.case, r.tool, r.runs, f"{kind}-{r.size}") for r in rows]
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
