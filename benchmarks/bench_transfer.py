#!/usr/bin/env python3
"""pyoci's registry transfers against skopeo (issue 13 item 6): push, re-push, copy, start-up, seed flow.

Every registry is the Debian ``docker-registry`` (distribution 2.8) on 127.0.0.1, plain HTTP (pyoci
allows it for loopback hosts; skopeo gets ``--*-tls-verify=false``). Each tool runs as a whole process
under ``/usr/bin/time -v``, the tools of a case alternating within each round (in reverse order every
other round); medians of wall and CPU (user + sys) time and the largest peak RSS, as in
bench_convert.py, whose quiet-machine rule applies: the registries' own CPU is counted as part of the
run, not as a disturbance. "output bytes" is what the destination registry stores in its blob store.

Cases (``--cases``):
  push       one image of ``--push-layers`` ``mixed`` layers of ``--push-layer-size`` (10 x 35 MiB, each
             layer its own seed), packed into one docker-archive and converted once (untimed, gzip)
             by ``pyoci convert`` into a layout; pushed by ``pyoci push --jobs 1``, ``--jobs 3`` (the
             default) and ``--jobs 6``, and by ``skopeo copy oci:LAYOUT:bench docker://HOST/r:1``, each
             into a new registry (new process, new storage) so nothing is skipped or mounted, not even
             by skopeo's blob-info cache (it knows registries by host and port; each is new).
  re-push    the same image pushed again to a registry that holds it (same registry, same repository;
             both tools pushed it there once, untimed): pyoci asks for the manifest by digest and
             stops; skopeo asks for each blob (its blob-info cache knows them) and puts the manifest.
             ``pyoci --version`` runs in the same rounds, as the start-up the re-push is compared to.
  copy       registry to registry: a source registry holds the image (pushed once, untimed); each
             run copies it into a new destination registry: ``pyoci copy docker://SRC/r:1
             docker://DST/r:1`` against ``skopeo copy`` of the same.
  startup    ``--help``, ``--version``, a tiny convert (fixtures/hello-amd64.tar into a new layout;
             skopeo: ``copy docker-archive: oci:``) and a tiny push (that image from a layout to a
             running registry, a new repository each run: pyoci uploads its three blobs, skopeo may
             mount them from an earlier repository through its blob-info cache). ``--startup-runs``
             rounds (default 9).
  seed       the multi-platform flow of issue 9 at each ``--seed-sizes`` (18M, 223M): four
             docker-archives (amd64, arm64/v8, arm/v7, 386) of one ``mixed`` layer each (seeds 1000-1003,
             bench_flows.py's archives), pushed as one image index to a new registry. pyoci: one
             command, ``pyoci merge A1 A2 A3 A4 docker://HOST/r:multi``. skopeo: the hand-made flow,
             ``skopeo copy docker-archive:Ai oci:L:ARCH`` x 4, then sh + jq + sha256sum write the
             image index (each manifest's descriptor with the platform of its config) into the
             layout's blobs and index.json, then ``skopeo copy --all oci:L:multi docker://HOST/r:multi``.

pyoci's modules are byte-compiled first (as installed); each case's setup is untimed.
``--size-scale`` multiplies every layer size (0.05 for a quick smoke run). Skipped with a message when
skopeo or docker-registry is missing, and case by case when the disk is short. After the table, each
figure the issue sets a target for is printed with the target.

Examples:
  python -m benchmarks.bench_transfer --runs 5
  python -m benchmarks.bench_transfer --runs 1 --startup-runs 1 --size-scale 0.05
  python -m benchmarks.bench_transfer --cases push re-push --push-layers 4 --push-layer-size 100M
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import make_layers
from benchmarks.bench_convert import PYOCI, Attempt, Quiet, Row, compile_pyoci, machine, measure, table
from benchmarks.bench_flows import fresh_registry, platform_archives
from benchmarks.skopeo_baseline import make_docker_archive

if TYPE_CHECKING:
    from support.registry import Registry

CASES = ("push", "re-push", "copy", "startup", "seed")
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "hello-amd64.tar"
SKOPEO_PUSH = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]

# The hand-made multi-platform flow of issue 9: arguments LAYOUT HOST/REPO:TAG then ARCHIVE TAG pairs.
SEED_SCRIPT = r"""set -eu
layout=$1 dest=$2
shift 2
rm -rf "$layout"
while [ $# -gt 0 ]; do
  skopeo copy -q "docker-archive:$1" "oci:$layout:$2"
  shift 2
done
blobs=$layout/blobs/sha256
jq -c '.manifests[]' "$layout/index.json" | while read -r desc; do
  manifest=$(printf '%s' "$desc" | jq -r '.digest[7:]')
  config=$(jq -r '.config.digest[7:]' "$blobs/$manifest")
  platform=$(jq -c '{architecture, os} + (if .variant then {variant} else {} end)' "$blobs/$config")
  printf '%s' "$desc" | jq -c --argjson p "$platform" 'del(.annotations) + {platform: $p}'
done | jq -cs '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: .}' \
  > "$layout/index.tmp"
digest=$(sha256sum "$layout/index.tmp" | cut -d' ' -f1)
size=$(stat -c %s "$layout/index.tmp")
mv "$layout/index.tmp" "$blobs/$digest"
jq -c --arg d "sha256:$digest" --argjson s "$size" '.manifests += [{
  mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
  annotations: {"org.opencontainers.image.ref.name": "multi"}}]' "$layout/index.json" > "$layout/index.json.tmp"
mv "$layout/index.json.tmp" "$layout/index.json"
skopeo copy -q --all --dest-tls-verify=false "oci:$layout:multi" "docker://$dest"
"""

Command = list[str] | Callable[[], AbstractContextManager[Attempt]]


@dataclass
class Case:
    name: str
    entries: list[tuple[Row, Command, Path | None]]
    """(row, command, output layout to measure and remove) in run order."""
    runs: int


def blob_store(registry: Registry) -> Path:
    return registry.log.parent / "data" / "docker" / "registry" / "v2" / "blobs"


def on_fresh_registry(workdir: Path, cmd_for: Callable[[str], list[str]], *also: Registry) -> Command:
    """Each attempt runs ``cmd_for(host)`` against a new registry; ``also`` serve it too (a source)."""

    @contextmanager
    def attempt() -> Iterator[Attempt]:
        with fresh_registry(workdir) as registry:
            helpers = (registry.process.pid, *(r.process.pid for r in also))
            yield Attempt(cmd_for(registry.host), helpers, blob_store(registry))

    return attempt


def on_registry(registry: Registry, cmd_for: Callable[[str], list[str]]) -> Command:
    """Each attempt runs ``cmd_for(host)`` against the same running registry."""

    @contextmanager
    def attempt() -> Iterator[Attempt]:
        yield Attempt(cmd_for(registry.host), (registry.process.pid,))

    return attempt


def size_label(size: int) -> str:
    return f"{size / 2**20:g}M"


def check_disk(workdir: Path, what: str, needed: int) -> bool:
    free = shutil.disk_usage(workdir).free
    if free < needed + (1 << 30):
        print(f"skipping {what}: needs {(needed + (1 << 30)) / 2**30:.1f} GiB free, {free / 2**30:.1f} GiB free")
        return False
    return True


def push_layout(workdir: Path, count: int, size: int) -> Path:
    """The push image: ``count`` mixed layers of ``size`` bytes, one docker-archive, converted once."""
    name = f"push-{count}x{size_label(size)}"
    layout = workdir / f"{name}-layout"
    if (layout / "index.json").exists():
        return layout
    layers = []
    for seed in range(count):
        layer = workdir / f"mixed-{size_label(size)}-seed{100 + seed}.tar"
        if not layer.exists():
            make_layers.build_mixed(str(layer), size, 100 + seed)
        layers.append(str(layer))
    archive = workdir / f"{name}.docker-archive.tar"
    make_docker_archive(layers, str(archive))
    convert = [*PYOCI, "convert", "-q", str(archive), f"oci:{layout}:bench"]
    subprocess.run(convert, check=True, stdout=subprocess.DEVNULL)
    return layout


def push_case(workdir: Path, layout: Path, label: str) -> Case:
    source = f"oci:{layout}:bench"
    entries: list[tuple[Row, Command, Path | None]] = []
    peer = Row("push", "skopeo copy oci: docker://", size=label)
    for jobs in (1, 3, 6):
        row = Row("push", f"pyoci push --jobs {jobs}", size=label)
        cmd = [*PYOCI, "push", "-q", "--jobs", str(jobs), source]
        entries.append((row, on_fresh_registry(workdir, lambda host, c=cmd: [*c, f"docker://{host}/r:1"]), None))
        if jobs == 1:  # skopeo between pyoci's runs, so neither always follows the other
            peer_cmd = [*SKOPEO_PUSH, source]
            entries.append(
                (peer, on_fresh_registry(workdir, lambda host, c=peer_cmd: [*c, f"docker://{host}/r:1"]), None)
            )
    return Case("push", entries, 0)


def repush_case(workdir: Path, layout: Path, label: str, stack: ExitStack) -> Case:
    registry = stack.enter_context(fresh_registry(workdir))
    source, dest = f"oci:{layout}:bench", f"docker://{registry.host}/r:1"
    pyoci, skopeo = [*PYOCI, "push", "-q", source, dest], [*SKOPEO_PUSH, source, dest]
    for cmd in (pyoci, skopeo):  # both have pushed it once
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return Case(
        "re-push",
        [
            (Row("re-push", "pyoci push (again)", size=label), on_registry(registry, lambda _: pyoci), None),
            (Row("re-push", "skopeo copy (again)", size=label), on_registry(registry, lambda _: skopeo), None),
            (Row("re-push base", "pyoci --version", size=label), [*PYOCI, "--version"], None),
        ],
        0,
    )


def copy_case(workdir: Path, layout: Path, label: str, stack: ExitStack) -> Case:
    source = stack.enter_context(fresh_registry(workdir))
    src = f"docker://{source.host}/r:1"
    subprocess.run([*PYOCI, "push", "-q", f"oci:{layout}:bench", src], check=True, stdout=subprocess.DEVNULL)
    pyoci = [*PYOCI, "copy", "-q", src]
    skopeo = ["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", src]
    return Case(
        "copy",
        [
            (
                Row("copy", "skopeo copy docker:// docker://", size=label),
                on_fresh_registry(workdir, lambda host: [*skopeo, f"docker://{host}/r:1"], source),
                None,
            ),
            (
                Row("copy", "pyoci copy docker:// docker://", size=label),
                on_fresh_registry(workdir, lambda host: [*pyoci, f"docker://{host}/r:1"], source),
                None,
            ),
        ],
        0,
    )


def startup_case(workdir: Path, stack: ExitStack) -> Case:
    tiny = workdir / "tiny-layout"
    if not (tiny / "index.json").exists():
        subprocess.run([*PYOCI, "convert", "-q", str(FIXTURE), f"oci:{tiny}:t"], check=True, stdout=subprocess.DEVNULL)
    registry = stack.enter_context(fresh_registry(workdir))
    repos = itertools.count()  # a new repository per run: nothing there to skip
    out_p, out_s = workdir / "tiny-out-pyoci", workdir / "tiny-out-skopeo"
    entries: list[tuple[Row, Command, Path | None]] = [
        (Row("--help", "skopeo --help"), ["skopeo", "--help"], None),
        (Row("--help", "pyoci --help"), [*PYOCI, "--help"], None),
        (Row("--version", "skopeo --version"), ["skopeo", "--version"], None),
        (Row("--version", "pyoci --version"), [*PYOCI, "--version"], None),
        (
            Row("tiny convert", "skopeo copy docker-archive: oci:"),
            ["skopeo", "copy", "-q", f"docker-archive:{FIXTURE}", f"oci:{out_s}:t"],
            out_s,
        ),
        (Row("tiny convert", "pyoci convert"), [*PYOCI, "convert", "-q", str(FIXTURE), f"oci:{out_p}:t"], out_p),
        (
            Row("tiny push", "skopeo copy oci: docker://"),
            on_registry(registry, lambda host: [*SKOPEO_PUSH, f"oci:{tiny}:t", f"docker://{host}/s{next(repos)}:1"]),
            None,
        ),
        (
            Row("tiny push", "pyoci push"),
            on_registry(registry, lambda host: [*PYOCI, "push", "-q", f"oci:{tiny}:t", f"docker://{host}/p{next(repos)}:1"]),
            None,
        ),
    ]
    for row, _, _ in entries:
        row.size = "tiny"
    return Case("startup", entries, 0)


def seed_case(workdir: Path, size_text: str, size: int) -> Case:
    """The seed flow at ``size_text`` (the case's name), each platform's layer ``size`` bytes."""
    archives, arches = platform_archives(workdir, size, size_label(size))
    script = workdir / "seed-flow.sh"
    script.write_text(SEED_SCRIPT)
    layout = seed_layout(workdir)
    pairs = [x for archive, (arch, _) in zip(archives, arches, strict=True) for x in (str(archive), arch)]
    label = f"4x{size_label(size)}"
    return Case(
        f"seed {size_text}",
        [
            (
                Row(f"seed {size_text}", "skopeo x4 + jq + skopeo --all", size=label),
                on_fresh_registry(workdir, lambda host: ["sh", str(script), str(layout), f"{host}/r:multi", *pairs]),
                None,
            ),
            (
                Row(f"seed {size_text}", "pyoci merge (1 command)", size=label),
                on_fresh_registry(
                    workdir, lambda host: [*PYOCI, "merge", "-q", *map(str, archives), f"docker://{host}/r:multi"]
                ),
                None,
            ),
        ],
        0,
    )


def seed_layout(workdir: Path) -> Path:
    """The layout of skopeo's seed flow (its script empties it first)."""
    return workdir / "seed-skopeo-layout"


def run_rounds(cases: list[Case], quiet: Quiet) -> None:
    """Round 1 of every case, then round 2, ...; within a case the order flips every other round."""
    for round_ in range(max(case.runs for case in cases)):
        for case in cases:
            if round_ >= case.runs:
                continue
            for row, cmd, out in case.entries if round_ % 2 == 0 else reversed(case.entries):
                run = measure(cmd, out, quiet)
                row.runs.append(run)
                mark = " (disturbed)" if run.disturbed else ""
                print(
                    f"  round {round_ + 1} {case.name:12} {row.tool:32} {run.wall:7.2f}s cpu {run.cpu:6.2f}s "
                    f"registry {run.helper_cpu:5.2f}s rss {run.rss_mib:5.1f} MiB others {run.others_cpu:5.2f}s{mark}",
                    file=sys.stderr,
                )


def median_of(rows: list[Row], case: str, tool: str) -> float | None:
    row = next((r for r in rows if r.case == case and r.tool == tool and r.runs), None)
    return row.median("wall") if row else None


def against_targets(rows: list[Row]) -> list[str]:
    """Each figure the issue sets a target for, with the target and whether it is met."""
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    skopeo_push = median_of(rows, "push", "skopeo copy oci: docker://")
    for jobs in (1, 3, 6):
        pyoci = median_of(rows, "push", f"pyoci push --jobs {jobs}")
        if pyoci is not None and skopeo_push:
            ratio = pyoci / skopeo_push
            lines.append(
                f"push --jobs {jobs}: {pyoci:.2f} s, {ratio:.2f}x skopeo's {skopeo_push:.2f} s "
                f"(target <= 0.6x: {verdict(ratio <= 0.6)})"
            )
    again, peer = median_of(rows, "re-push", "pyoci push (again)"), median_of(rows, "re-push", "skopeo copy (again)")
    start = median_of(rows, "re-push base", "pyoci --version")
    if again is not None and peer and start is not None:
        ratio, beyond = again / peer, again - start
        lines.append(
            f"re-push: {again:.2f} s, {ratio:.2f}x skopeo's {peer:.2f} s (target <= 2x: {verdict(ratio <= 2)})"
        )
        lines.append(
            f"re-push beyond start-up: {beyond:.3f} s over pyoci --version's {start:.2f} s "
            f"(target <= 0.1 s: {verdict(beyond <= 0.1)})"
        )
    for case, tool, target in (
        ("--help", "pyoci --help", 0.1),
        ("tiny convert", "pyoci convert", 0.15),
        ("tiny push", "pyoci push", 0.15),
    ):
        wall = median_of(rows, case, tool)
        if wall is not None:
            lines.append(f"{case}: {wall:.3f} s (target <= {target} s: {verdict(wall <= target)})")
    for case in dict.fromkeys(r.case for r in rows):
        if case == "copy" or case.startswith("seed"):
            pyoci = next(r for r in rows if r.case == case and r.tool.startswith("pyoci"))
            skopeo = next(r for r in rows if r.case == case and r.tool.startswith("skopeo"))
            lines.append(
                f"{case}: pyoci {pyoci.median('wall'):.2f} s, skopeo {skopeo.median('wall'):.2f} s, "
                f"{pyoci.median('wall') / skopeo.median('wall'):.2f}x (no target)"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--runs", type=int, default=5, help="rounds; each round runs every tool of every case once")
    ap.add_argument("--startup-runs", type=int, default=9, help="rounds of the startup case")
    ap.add_argument("--size-scale", type=float, default=1.0, help="multiplies every layer size (push and seed)")
    ap.add_argument("--push-layers", type=int, default=10, help="layers of the push/re-push/copy image")
    ap.add_argument("--push-layer-size", default="35M", help="size of each of those layers")
    ap.add_argument("--seed-sizes", nargs="+", default=["18M", "223M"], help="layer size per platform")
    ap.add_argument("--out", default="/tmp/pyoci-bench")
    ap.add_argument("--max-busy", type=float, default=Quiet.max_busy, help="quiet: at most this busy (0..1)")
    ap.add_argument("--max-wait", type=float, default=Quiet.max_wait, help="seconds to wait for quiet")
    ap.add_argument("--retries", type=int, default=Quiet.retries, help="re-runs of a disturbed run")
    ap.add_argument("--json", help="also write every run to this file")
    args = ap.parse_args(argv)
    for tool in ("skopeo", "docker-registry"):
        if not shutil.which(tool):
            print(f"skipping: {tool} is not installed (every case compares with skopeo through docker-registry)")
            return 0
    compile_pyoci()
    quiet = Quiet(args.max_busy, args.max_wait, args.retries)
    workdir = Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    registry = subprocess.run(["docker-registry", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {machine()}; {registry}")
    print(f"command: python -m benchmarks.bench_transfer {' '.join(sys.argv[1:] if argv is None else argv)}\n")
    layer_size = int(make_layers.parse_size(args.push_layer_size) * args.size_scale)
    image = args.push_layers * layer_size
    label = f"{args.push_layers}x{size_label(layer_size)}"
    with ExitStack() as stack:
        cases: list[Case] = []
        # layers, archive, layout and up to three registries holding the image
        if {"push", "re-push", "copy"} & set(args.cases) and check_disk(workdir, "push, re-push, copy", 6 * image):
            layout = push_layout(workdir, args.push_layers, layer_size)
            if "push" in args.cases:
                cases.append(push_case(workdir, layout, label))
            if "re-push" in args.cases:
                cases.append(repush_case(workdir, layout, label, stack))
            if "copy" in args.cases:
                cases.append(copy_case(workdir, layout, label, stack))
        if "startup" in args.cases:
            cases.append(startup_case(workdir, stack))
        for size_text in args.seed_sizes if "seed" in args.cases else ():
            size = int(make_layers.parse_size(size_text) * args.size_scale)
            # four layers, four archives, skopeo's layout and a registry's copy
            if check_disk(workdir, f"seed {size_text}", 12 * size):
                cases.append(seed_case(workdir, size_text, size))
        for case in cases:
            case.runs = args.startup_runs if case.name == "startup" else args.runs
        run_rounds(cases, quiet)
    shutil.rmtree(seed_layout(workdir), ignore_errors=True)
    # skopeo first in each case: the table's ratio column divides by a case's first row
    listed = [row for case in cases for row, _, _ in case.entries]
    order = list(dict.fromkeys(row.case for row in listed))
    rows = sorted(listed, key=lambda r: (order.index(r.case), not r.tool.startswith("skopeo")))
    print(table(rows, f"transfers against skopeo, {args.runs} rounds ({args.startup_runs} for start-up)"))
    print("\nAgainst the targets:")
    print("\n".join(f"- {line}" for line in against_targets(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
