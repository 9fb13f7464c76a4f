"""Seeded mutation fuzzing of docker-archives (issue 12): every input gives a valid layout or one clean error.

Each case takes one seed archive (the fixtures, and the archive ``tests/archives.py`` builds) and
applies one to three mutations: member reordering, duplication, renaming and relinking, JSON edits of
``manifest.json`` or a config (odd values in the fields the OCI schema types), layers replaced (with
the config's diff_id updated to match) or wrapped in gzip or zstd, header fields overwritten (with the
checksum fixed so the corruption gets past it), bit flips, truncation, and gzip or zstd wrapping of
the whole archive. The contract: the conversion succeeds and ``pyoci.verify`` accepts the layout
(a config kept with warnings yields exactly that many schema problems), or it raises one ``PyociError``
whose message is one line, and the destination is unchanged (a new one is not created; an existing
layout keeps every byte). Most cases run in-process; every tenth runs the CLI, whose stderr must be
exactly one ``pyoci: error:`` line.

``PYOCI_FUZZ_CASES`` sets the number of cases (default 300), ``PYOCI_FUZZ_SEED`` the seed (default 1);
a failure names the case and its mutations, so ``PYOCI_FUZZ_SEED=S`` and the case number reproduce it.
"""

from __future__ import annotations

import collections
import copy
import gzip
import hashlib
import io
import json
import os
import random
import re
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zstandard
from conftest import FIXTURES, SCHEMAS, need_shared, run_pyoci
from support.archives import simple_archive
from support.layouts import snapshot

from pyoci import PyociError, convert, verify

CASES = int(os.environ.get("PYOCI_FUZZ_CASES", "300"))
SEED = int(os.environ.get("PYOCI_FUZZ_SEED", "1"))
CLI_EVERY = 10
CASE_SECONDS = 20


@dataclass
class Member:
    info: tarfile.TarInfo
    data: bytes


def seeds() -> dict[str, bytes]:
    """Plain tar bytes of every seed archive, by name (compressed fixtures decompressed)."""
    out = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*.tar"))}
    out["hello-amd64.tar.gz"] = gzip.decompress((FIXTURES / "hello-amd64.tar.gz").read_bytes())
    out["hello-amd64.tar.zst"] = (
        zstandard.ZstdDecompressor().decompressobj().decompress((FIXTURES / "hello-amd64.tar.zst").read_bytes())
    )
    out["built"] = simple_archive(n_layers=3, tags=["example.com/built:1", "example.com/built:2"])
    return out


def members_of(data: bytes) -> list[Member] | None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            return [Member(info, tar.extractfile(info).read() if info.isfile() else b"") for info in tar]  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError):
        return None


def tar_of(members: list[Member]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = copy.copy(member.info)
            info.size = len(member.data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(member.data) if info.isfile() else None)
    return out.getvalue()


# --- mutations of the member list ---------------------------------------------------------------------

MemberMutation = Callable[[random.Random, list[Member]], str]


def reorder(rng: random.Random, members: list[Member]) -> str:
    rng.shuffle(members)
    return "reorder"


def duplicate(rng: random.Random, members: list[Member]) -> str:
    source = rng.choice(members)
    twin = Member(copy.copy(source.info), source.data)
    if rng.random() < 0.5:  # the same name with other content
        other = rng.choice([m for m in members if m.info.isfile()] or [source])
        twin.data = other.data
    members.insert(rng.randrange(len(members) + 1), twin)
    return f"duplicate {source.info.name}"


def rename(rng: random.Random, members: list[Member]) -> str:
    member = rng.choice(members)
    old = member.info.name
    member.info.name = rng.choice(["manifest.json", "./" + old, old + "/", "../" + old, "x/../" + old, old[::-1], ""])
    return f"rename {old} -> {member.info.name}"


def relink(rng: random.Random, members: list[Member]) -> str:
    member = rng.choice(members)
    target = rng.choice(members).info.name
    member.info.type = rng.choice([tarfile.SYMTYPE, tarfile.LNKTYPE])
    member.info.linkname = rng.choice([target, "../" + target, "/" + target, member.info.name, "nowhere"])
    member.data = b""
    return f"relink {member.info.name} -> {member.info.linkname}"


def drop(rng: random.Random, members: list[Member]) -> str:
    return f"drop {members.pop(rng.randrange(len(members))).info.name}"


ODD_VALUES: list[object] = [
    None, 1.5, -1, 0, True, "", "x", "\udcff", [], {}, [None], [1], {"a": 1}, "1970-13-01T00:00:00Z",
    "../../etc/passwd", "sha256:" + "0" * 64, "sha256:zz", [[[[[]]]]], "x" * 3000,
]  # fmt: skip


def edit_json(rng: random.Random, members: list[Member]) -> str:
    documents = [m for m in members if m.info.isfile() and m.data.lstrip()[:1] in (b"{", b"[")]
    if not documents:
        return "edit-json (none)"
    member = rng.choice(documents)
    try:
        document = json.loads(member.data)
    except ValueError:
        return "edit-json (unparsable)"
    path: list[str | int] = []
    node = document
    while isinstance(node, dict | list) and node and rng.random() < 0.7:
        key: str | int = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append(key)
        node = node[key]  # type: ignore[index]
    value = rng.choice(ODD_VALUES)
    if not path:
        document = value
    else:
        parent = document
        for key in path[:-1]:
            parent = parent[key]  # type: ignore[index]
        if isinstance(parent, dict) and rng.random() < 0.2:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value  # type: ignore[index]
    member.data = json.dumps(document).encode()
    return f"edit-json {member.info.name} {path} = {value!r:.40}"


CONFIG_FIELDS = ["created", "author", "architecture", "os", "variant", "os.version", "os.features", "config",
                 "rootfs", "history", "config.Cmd", "config.Entrypoint", "config.Env", "config.User",
                 "config.Labels", "config.ExposedPorts", "config.Volumes", "config.ArgsEscaped",
                 "rootfs.diff_ids", "rootfs.type"]  # fmt: skip


def image(members: list[Member]) -> tuple[Member, dict[str, object], list[str]] | None:
    """The config member of the first image of manifest.json, the config, and its layer paths."""
    by_name = {m.info.name: m for m in members}
    try:
        entry = json.loads(by_name["manifest.json"].data)[0]
        member = by_name[entry["Config"]]
        config = json.loads(member.data)
        layers = list(entry["Layers"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return (member, config, layers) if isinstance(config, dict) else None


def edit_config(rng: random.Random, members: list[Member]) -> str:
    found = image(members)
    if found is None:
        return "edit-config (none)"
    member, config, _ = found
    path = rng.choice(CONFIG_FIELDS)
    parent, _, key = path.partition(".")
    target = config.get(parent) if key and parent in ("config", "rootfs") else config
    if not isinstance(target, dict):
        return "edit-config (no parent)"
    value = rng.choice(ODD_VALUES)
    target[key or path] = value
    member.data = json.dumps(config).encode()
    return f"edit-config {path} = {value!r:.40}"


def replace_layer(rng: random.Random, members: list[Member]) -> str:
    found = image(members)
    by_name = {m.info.name: m for m in members}
    if found is None or not found[2] or found[2][0] not in by_name:
        return "replace-layer (none)"
    member, config, layers = found
    position = rng.randrange(len(layers))
    layer = by_name.get(layers[position])
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if layer is None or not layer.info.isfile() or not isinstance(diff_ids, list) or position >= len(diff_ids):
        return "replace-layer (no such layer)"
    layer.data = rng.choice([b"", bytes(1024), layer.data[:700], rng.randbytes(3000), b"{}", gzip.compress(b"junk")])
    diff_ids[position] = f"sha256:{hashlib.sha256(layer.data).hexdigest()}"
    member.data = json.dumps(config).encode()
    return f"replace-layer {position} with {len(layer.data)} bytes"


def compress_layer(rng: random.Random, members: list[Member]) -> str:
    layers = [m for m in members if m.info.isfile() and m.info.name.endswith(".tar")]
    if not layers:
        return "compress-layer (none)"
    member = rng.choice(layers)
    if rng.random() < 0.5:
        member.data = gzip.compress(member.data, mtime=0)
        return f"gzip-layer {member.info.name}"
    member.data = zstandard.ZstdCompressor().compress(member.data)
    return f"zstd-layer {member.info.name}"


MEMBER_MUTATIONS: list[MemberMutation] = [
    reorder, duplicate, rename, relink, drop, edit_json, edit_config, edit_config, replace_layer, compress_layer
]  # fmt: skip

# --- mutations of the bytes ---------------------------------------------------------------------------

HEADER_FIELDS = {"name": (0, 100), "mode": (100, 8), "size": (124, 12), "type": (156, 1), "link": (157, 100),
                 "magic": (257, 8), "prefix": (345, 155)}  # fmt: skip
ODD_FIELD_BYTES = [b"\xff" * 12, b"77777777777\0", b"\x80" + b"\xff" * 11, b"-1", b"x", b"L", b"K", b"g", b"S", b"2",
                   b"5", b"../..", b"\0", b"ustar  \0", b"00000000001\0"]  # fmt: skip


def headers(data: bytes) -> list[int]:
    """Offsets of the member headers of a tar (as tarfile finds them)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            return [info.offset for info in tar]
    except (tarfile.TarError, OSError, EOFError):
        return []


def corrupt_header(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    offsets = headers(data)
    if not offsets:
        return data, "header (none)"
    offset = rng.choice(offsets)
    name, (start, length) = rng.choice(list(HEADER_FIELDS.items()))
    value = rng.choice(ODD_FIELD_BYTES) if rng.random() < 0.6 else rng.randbytes(length)
    block = bytearray(data[offset : offset + 512])
    block[start : start + length] = value[:length].ljust(length, b"\0")
    if rng.random() < 0.9:  # a valid checksum, so the corruption reaches the fields' parsers
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
    return data[:offset] + bytes(block) + data[offset + 512 :], f"header @{offset} {name}={value[:16]!r}"


def flip_bits(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    spots = [rng.randrange(len(out)) for _ in range(rng.randint(1, 8))]
    for spot in spots:
        out[spot] ^= 1 << rng.randrange(8)
    return bytes(out), f"flip {spots}"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    cut = rng.randrange(len(data))
    return data[:cut], f"truncate {cut}"


def wrap(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if rng.random() < 0.5:
        return gzip.compress(data, compresslevel=1, mtime=0), "gzip"
    return zstandard.ZstdCompressor(level=1).compress(data), "zstd"


# --- one case -----------------------------------------------------------------------------------------


def mutate(rng: random.Random, plain: dict[str, bytes]) -> tuple[bytes, list[str]]:
    seed_name = rng.choice(sorted(plain))
    data = plain[seed_name]
    steps = [seed_name]
    members = members_of(data)
    assert members is not None
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        steps.append(rng.choice(MEMBER_MUTATIONS)(rng, members))
    data = tar_of(members) if len(steps) > 1 else data
    if rng.random() < 0.6:
        data, step = rng.choice([corrupt_header, corrupt_header, flip_bits, truncate])(rng, data)
        steps.append(step)
    if rng.random() < 0.3:
        data, step = wrap(rng, data)
        steps.append(step)
        if rng.random() < 0.3:
            data, step = rng.choice([flip_bits, truncate])(rng, data)
            steps.append(step)
    return data, steps


_VOLATILE = re.compile(r"sha256:[0-9a-f]{64}|[0-9a-f]{64}|\d+")


def category(message: str, source: Path) -> str:
    """The error message without the file name, digests and numbers: what kind of refusal it was."""
    return _VOLATILE.sub("N", message.replace(str(source), "ARCHIVE"))[:90]


def run_case(number: int, plain: dict[str, bytes], template: Path, work: Path) -> str:
    rng = random.Random(f"{SEED}-{number}")
    data, steps = mutate(rng, plain)
    where = f"case {number} (PYOCI_FUZZ_SEED={SEED}): {' | '.join(steps)}"
    case = work / f"case{number}"
    case.mkdir()
    source = case / "in.tar"
    source.write_bytes(data)
    if number % 2:
        destination = case / "new"
        before: dict[str, bytes] = {}
    else:
        destination = case / "existing"
        shutil.copytree(template, destination)
        before = snapshot(destination)
    started = time.monotonic()
    if number % CLI_EVERY == 0:
        proc = run_pyoci("convert", "-q", str(source), f"oci:{destination}:t", check=False)
        err = proc.stderr.decode()
        warnings = [line for line in err.splitlines() if line.startswith("pyoci: warning: ")]
        error = None
        if proc.returncode != 0:
            assert proc.returncode == 1, f"{where}: exit {proc.returncode}: {err}"
            assert err.startswith("pyoci: error: ") and err.count("\n") == 1, f"{where}: {err}"
            error = err[len("pyoci: error: ") : -1]
    else:
        try:
            result = convert(str(source), f"oci:{destination}:t")
            warnings = [w for image in result.images for w in image.warnings]
            error = None
        except PyociError as exc:
            error = str(exc)
            assert error and "\n" not in error, f"{where}: {error!r}"
        except Exception as exc:
            raise AssertionError(f"{where}: {type(exc).__name__}: {exc}") from exc
    assert time.monotonic() - started < CASE_SECONDS, f"{where}: took {time.monotonic() - started:.1f} s"
    if error is not None:
        assert snapshot(destination) == before, f"{where}: the destination changed: {error}"
        assert destination.exists() == bool(before), where
        return category(error, source)
    problems = verify(destination, schemas_dir=SCHEMAS).problems
    assert len(problems) == len(warnings), f"{where}: {problems} (warnings: {warnings})"
    assert all("schema config-schema.json" in p for p in problems), f"{where}: {problems}"
    return "converted" + (" with warnings" if warnings else "")


def test_fuzz(tmp_path: Path) -> None:
    need_shared()
    plain = seeds()
    template = tmp_path / "template"
    convert(str(FIXTURES / "hello-arm64.tar"), f"oci:{template}:keep")
    outcomes: collections.Counter[str] = collections.Counter()
    for number in range(CASES):
        outcomes[run_case(number, plain, template, tmp_path)] += 1
        shutil.rmtree(tmp_path / f"case{number}")
    converted = sum(n for kind, n in outcomes.items() if kind.startswith("converted"))
    print(f"\nfuzz: {CASES} cases, seed {SEED}: {converted} converted, {CASES - converted} refused cleanly")
    for kind, n in outcomes.most_common():
        print(f"{n:6d}  {kind}")
    assert converted and converted < CASES, outcomes  # both sides of the contract were exercised
