"""Seeded mutation fuzzing of OCI image layouts: every command either succeeds soundly or fails in one clean line.

Seeds: small layouts made from ``fixtures/hello-*.tar`` with ``pyoci.convert`` and ``pyoci.merge``: one
image (gzip layers), one image (zstd layers), a two-platform image index, and a layout holding a tagged
index, a tagged manifest and an untagged entry. Each case copies one seed and applies one to three
mutations: bit flips and truncations of blobs, index.json and oci-layout; JSON edits anywhere (odd values
in random places); descriptor edits (size, digest, media type, platform, annotations, urls, data) and
document edits (schemaVersion, media types, layers, manifests, subject, config fields), made consistent
(the edited document stored under its new digest, every parent re-pointed up to index.json) or left
inconsistent; index.json entries duplicated, dropped, re-tagged, aliased with another size or type,
nested up to 70 indexes deep, padded to 5 MB or replaced by garbage; blobs removed, duplicated, swapped,
replaced by a directory or a symbolic link, or re-hashed with sha512; leftover temporary and stray files.

For each mutated layout, in-process: ``verify`` with the OCI schemas (and each tag alone), ``inspect``,
``copy`` into a fresh layout, ``merge`` into an existing layout (tag ``keep`` holds amd64 and 386, so the
blobs of amd64 sources are already there; into ``keep`` or a new tag, with or without ``replace``) and
``gc(dry_run=True)``. The contract: each command returns (a copy or merge leaving a destination that
``verify`` accepts with the schemas) or raises a ``PyociError`` whose message is one line, and then the
destination is unchanged (a fresh one not created); no other exception; verify's problems are one line
each; a layout verify accepts, copy does not refuse for its bytes, and each of its tags passes alone;
nothing writes into the source layout; no case takes more than ``CASE_SECONDS``.

Copy and merge check documents, digests and sizes, not layer contents: a layer whose bytes are not
compressed as its media type says, or decompress to another diff_id, and a config field that image
tools read as absent (a null the config schema types) are copied as they are. So a copy or merge
may succeed where verify finds such a problem in the source, and verify then finds the same problem
in the destination; any other problem there fails the test. The regression tests at the end replay
the cases in which the fuzzer found a bug, each now fixed, and one such kept problem.

``PYOCI_FUZZ_CASES`` sets the number of cases (default 400), ``PYOCI_FUZZ_SEED`` the seed (default 1); a
failure names the case and its mutations, so ``PYOCI_FUZZ_SEED=S`` and the case number reproduce it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import need_shared
from support.layouts import REF_NAME, snapshot
from support.paths import FIXTURES, SCHEMAS

from pyoci import Compression, LayerOptions, convert, copy, gc, inspect, merge, verify
from pyoci.errors import PyociError

CASES = int(os.environ.get("PYOCI_FUZZ_CASES", "400"))
SEED = int(os.environ.get("PYOCI_FUZZ_SEED", "1"))
CASE_SECONDS = 20

T = TypeVar("T")


# --- seeds --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    name: str
    path: Path
    tag: str


def make_seeds(base: Path) -> tuple[list[Seed], Path]:
    """The seed layouts, and the existing layout merges go into (tag ``keep``: amd64 and 386)."""
    hello = {arch: str(FIXTURES / f"hello-{arch}.tar") for arch in ("amd64", "arm64", "armv7", "386")}
    convert(hello["amd64"], f"oci:{base / 'single'}:1.0")
    convert(hello["arm64"], f"oci:{base / 'zstd'}:z", options=LayerOptions(Compression.ZSTD, threads=1))
    merge([hello["amd64"], hello["arm64"]], f"oci:{base / 'multi'}:m")
    merge([hello["armv7"], hello["amd64"]], f"oci:{base / 'mixed'}:m")
    convert(hello["386"], f"oci:{base / 'mixed'}:s")
    merge([hello["arm64"]], f"oci:{base / 'mixed'}", flat=True)  # an untagged index.json entry
    merge([hello["amd64"], hello["386"]], f"oci:{base / 'target'}:keep")
    seeds = [
        Seed("single", base / "single", "1.0"),
        Seed("zstd", base / "zstd", "z"),
        Seed("multi", base / "multi", "m"),
        Seed("mixed", base / "mixed", "m"),
        Seed("mixed", base / "mixed", "s"),
    ]
    return seeds, base / "target"


# --- the mutable layout -------------------------------------------------------------------------------


def parse(data: bytes) -> Any:
    """A JSON object, or None when the bytes are not one."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class CaseLayout:
    """One case's copy of a seed, with the edits the mutations need."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = root / "index.json"

    def blobs(self) -> list[Path]:
        """Every regular blob file (not symlinks), sorted."""
        found = [p for p in (self.root / "blobs").rglob("*") if p.is_file() and not p.is_symlink()]
        return sorted(p for p in found if not p.name.startswith("."))

    def files(self) -> list[Path]:
        """index.json, oci-layout and the blobs: what byte mutations hit."""
        return [p for p in (self.index, self.root / "oci-layout") if p.is_file()] + self.blobs()

    def documents(self) -> list[tuple[Path, Any]]:
        """index.json and every blob that is a JSON object, parsed."""
        out = []
        for path in [self.index, *self.blobs()] if self.index.is_file() else self.blobs():
            if path.stat().st_size <= 1 << 20:
                document = parse(path.read_bytes())
                if document is not None:
                    out.append((path, document))
        return out

    def store(self, data: bytes, algorithm: str = "sha256") -> str:
        """Write ``data`` as a blob; its digest."""
        encoded = hashlib.new(algorithm, data).hexdigest()
        path = self.root / "blobs" / algorithm / encoded
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{algorithm}:{encoded}"

    @staticmethod
    def digest_of(path: Path) -> str:
        return f"{path.parent.name}:{path.name}"

    def save(self, path: Path, document: Any, consistent: bool, drop_old: bool = False) -> None:
        """Write an edited document: in place, or (``consistent``) under its new digest with every parent re-pointed."""
        data = dump(document)
        if path == self.index or not consistent:
            path.write_bytes(data)
            return
        old = self.digest_of(path)
        new = self.store(data, path.parent.name)
        if drop_old and new != old:
            path.unlink()
        self.repoint(old, new, len(data))

    def repoint(self, old: str, new: str, size: int, depth: int = 0) -> None:
        """Point every descriptor naming ``old`` at ``new``, storing each changed parent under its new digest."""
        if depth > 12 or old == new:
            return
        for path, document in self.documents():
            if self.digest_of(path) != new and retarget(document, old, new, size):
                data = dump(document)
                if path == self.index:
                    path.write_bytes(data)
                else:
                    self.repoint(self.digest_of(path), self.store(data, path.parent.name), len(data), depth + 1)

    def descriptors(self) -> list[tuple[Path, Any, dict[str, Any]]]:
        """Every descriptor (an object with a ``digest``) in every document: (file, document, descriptor)."""
        out = []
        for path, document in self.documents():
            for node in walk_json(document):
                if isinstance(node, dict) and "digest" in node:
                    out.append((path, document, node))
        return out


def retarget(node: Any, old: str, new: str, size: int) -> bool:
    changed = False
    if isinstance(node, dict):
        if node.get("digest") == old:
            node["digest"], node["size"] = new, size
            changed = True
        for value in node.values():
            changed |= retarget(value, old, new, size)
    elif isinstance(node, list):
        for value in node:
            changed |= retarget(value, old, new, size)
    return changed


def walk_json(node: Any) -> list[Any]:
    out = [node]
    if isinstance(node, dict):
        for value in node.values():
            out.extend(walk_json(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(walk_json(value))
    return out


# --- mutations ----------------------------------------------------------------------------------------

Mutation = Callable[[random.Random, CaseLayout], str]

ZERO = "sha256:" + "0" * 64
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 1.5, 2**53 + 1, 2**64, "", "x", "a\nb", "\u00e9\u0000", "\udcff", [], {}, [None], {"a": 1},
    "sha256:zz", ZERO, "sha512:" + "0" * 128, "../../etc/passwd", "x" * 5000, [[[[[[[[]]]]]]]],
]  # fmt: skip
MEDIA_TYPES = [
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "application/vnd.oci.empty.v1+json",
    "application/octet-stream", "text/plain\n", "", 7, None,
]  # fmt: skip
PLATFORMS: list[Any] = [
    {}, {"os": "linux"}, {"os": 1, "architecture": []}, "linux/amd64", None,
    {"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"},
    {"os": "linux", "architecture": "arm", "variant": "v7"},
    {"os": "windows", "architecture": "amd64", "os.version": 10},
    {"os": "linux", "architecture": "amd64", "os.features": "x"},
    {"os": "linux", "architecture": "386", "features": [1]},
    {"os": "../..", "architecture": "a/b"},
]  # fmt: skip
ANNOTATIONS: list[Any] = [
    {"a": 1}, [], "x", None, {REF_NAME: 5}, {REF_NAME: "other"}, {REF_NAME: "bad tag!"}, {REF_NAME: "m"},
    {REF_NAME: "1.0"}, {"k\n": "v\r\n"}, {"org.opencontainers.image.created": "yesterday"}, {"": ""},
]  # fmt: skip


def show(value: Any) -> str:
    """A value for a case's description, cut short."""
    return f"{value!r:.40}"


def flip_bits(rng: random.Random, layout: CaseLayout) -> str:
    files = layout.files()
    if not files:
        return "flip (nothing)"
    path = rng.choice(files)
    data = bytearray(path.read_bytes())
    if not data:
        return f"flip {path.name} (empty)"
    spots = sorted(rng.randrange(len(data)) for _ in range(rng.randint(1, 4)))
    for spot in spots:
        data[spot] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return f"flip {path.name[:12]} @{spots}"


def truncate(rng: random.Random, layout: CaseLayout) -> str:
    files = layout.files()
    if not files:
        return "truncate (nothing)"
    path = rng.choice(files)
    data = path.read_bytes()
    cut = rng.randrange(len(data)) if data else 0
    path.write_bytes(data[:cut])
    return f"truncate {path.name[:12]} to {cut}"


def edit_json(rng: random.Random, layout: CaseLayout) -> str:
    """An odd value, a deleted key or a duplicated list item somewhere in a document."""
    documents = layout.documents()
    if not documents:
        return "edit-json (none)"
    path, document = rng.choice(documents)
    trail: list[str | int] = []
    parent: Any = None
    node = document
    while isinstance(node, dict | list) and node and rng.random() < 0.75:
        key: str | int = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        trail.append(key)
        parent, node = node, node[key]
    consistent = rng.random() < 0.75
    if parent is None:
        document = rng.choice(ODD_VALUES)
        what = f"= {show(document)}"
    elif isinstance(parent, dict) and rng.random() < 0.25:
        del parent[trail[-1]]
        what = "deleted"
    elif isinstance(parent, list) and rng.random() < 0.3:
        parent.insert(rng.randrange(len(parent) + 1), node)
        what = "duplicated"
    else:
        value = rng.choice(ODD_VALUES)
        parent[trail[-1]] = value
        what = f"= {show(value)}"
    layout.save(path, document, consistent)
    return f"edit-json {path.name[:12]} {trail} {what}{'' if consistent else ' (in place)'}"


DESCRIPTOR_FIELDS = ["size", "size", "digest", "digest", "mediaType", "mediaType", "platform", "annotations", "urls",
                     "artifactType", "data"]  # fmt: skip


def descriptor_value(rng: random.Random, layout: CaseLayout, descriptor: dict[str, Any], name: str) -> Any:
    if name == "size":
        size = descriptor.get("size")
        size = size if isinstance(size, int) else 0
        return rng.choice([size + 1, size - 1, 0, -1, 2**53, 2**63, 2**64, 1.5, str(size), None])
    if name == "digest":
        others = [layout.digest_of(p) for p in layout.blobs()]
        digest = str(descriptor.get("digest"))
        return rng.choice([*others[:3], rng.choice(others) if others else ZERO, ZERO, digest.upper(), "md5:" + "0" * 32,
                           digest[:-1], "sha256:../../../../etc/passwd", digest + "\n", 42])  # fmt: skip
    if name == "mediaType":
        return rng.choice(MEDIA_TYPES)
    if name == "platform":
        return rng.choice(PLATFORMS)
    if name == "annotations":
        return rng.choice(ANNOTATIONS)
    if name == "urls":
        return rng.choice([["http://127.0.0.1:9/x"], "http://x", [1], []])
    if name == "artifactType":
        return rng.choice(["application/vnd.example+json", 1, ""])
    return rng.choice(["e30=", "!!", 5, ""])  # data: base64 of "{}", not base64, not a string, empty


def edit_descriptor(rng: random.Random, layout: CaseLayout) -> str:
    """One field of one descriptor (in index.json, an index or a manifest), usually made consistent."""
    found = layout.descriptors()
    if not found:
        return "edit-descriptor (none)"
    path, document, descriptor = rng.choice(found)
    name = rng.choice(DESCRIPTOR_FIELDS)
    value = descriptor_value(rng, layout, descriptor, name)
    if value is None and rng.random() < 0.5:
        descriptor.pop(name, None)
        what = "deleted"
    else:
        descriptor[name] = value
        what = f"= {show(value)}"
    consistent = rng.random() < 0.85
    layout.save(path, document, consistent, drop_old=rng.random() < 0.3)
    return f"edit-descriptor {path.name[:12]} {name} {what}{'' if consistent else ' (in place)'}"


def dicts(items: list[Any]) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)]


def kind_of(document: Any) -> str:
    if "manifests" in document:
        return "index"
    if "layers" in document or isinstance(document.get("config"), dict) and "digest" in document["config"]:
        return "manifest"
    if "rootfs" in document or "architecture" in document:
        return "config"
    return "other"


def edit_document(rng: random.Random, layout: CaseLayout) -> str:
    """A targeted edit of a manifest, an index or a config, made consistent."""
    documents = [(p, d) for p, d in layout.documents() if p != layout.index]
    if not documents:
        return "edit-document (none)"
    path, document = rng.choice(documents)
    kind = kind_of(document)
    descriptors = [node for _, _, node in layout.descriptors()]
    existing = rng.choice(descriptors) if descriptors else {"digest": ZERO, "size": 1}
    if kind == "manifest":
        layers = document.get("layers") if isinstance(document.get("layers"), list) else []
        edits: dict[str, Callable[[], Any]] = {
            "schemaVersion": lambda: document.__setitem__("schemaVersion", rng.choice([1, 3, "2", None])),
            "mediaType": lambda: document.__setitem__("mediaType", rng.choice(MEDIA_TYPES)),
            "no-mediaType": lambda: document.pop("mediaType", None),
            "layers-empty": lambda: document.__setitem__("layers", []),
            "layers-object": lambda: document.__setitem__("layers", {"0": layers[:1]}),
            "layers-twice": lambda: document.__setitem__("layers", layers + layers),
            "layers-reversed": lambda: document.__setitem__("layers", layers[::-1]),
            "layers-drop": lambda: document.__setitem__("layers", layers[1:]),
            "config-is-layer": lambda: document.__setitem__("config", next(iter(dicts(layers)), {})),
            "no-config": lambda: document.pop("config", None),
            "subject": lambda: document.__setitem__(
                "subject",
                rng.choice(
                    [
                        {k: existing[k] for k in ("mediaType", "digest", "size") if k in existing},
                        {"mediaType": MEDIA_TYPES[0], "digest": ZERO, "size": 2},
                        "x",
                        None,
                    ]
                ),
            ),
            "artifactType": lambda: document.__setitem__("artifactType", rng.choice(["application/x+json", 3])),
            "annotations": lambda: document.__setitem__("annotations", rng.choice(ANNOTATIONS)),
        }
    elif kind == "index":
        children = document.get("manifests") if isinstance(document.get("manifests"), list) else []
        edits = {
            "schemaVersion": lambda: document.__setitem__("schemaVersion", rng.choice([1, 3, None])),
            "mediaType": lambda: document.__setitem__("mediaType", rng.choice(MEDIA_TYPES)),
            "manifests-empty": lambda: document.__setitem__("manifests", []),
            "manifests-twice": lambda: document.__setitem__("manifests", children + children),
            "manifests-null": lambda: document.__setitem__("manifests", None),
            "child-platform": lambda: [c.__setitem__("platform", rng.choice(PLATFORMS)) for c in dicts(children)[:1]],
            "children-same-platform": lambda: [
                c.__setitem__("platform", dicts(children)[0].get("platform")) for c in dicts(children)
            ],
            "no-platforms": lambda: [c.pop("platform", None) for c in dicts(children)],
            "subject": lambda: document.__setitem__(
                "subject", {"mediaType": MEDIA_TYPES[0], "digest": ZERO, "size": 2}
            ),
            "annotations": lambda: document.__setitem__("annotations", rng.choice(ANNOTATIONS)),
        }
    elif kind == "config":
        rootfs = document.get("rootfs") if isinstance(document.get("rootfs"), dict) else {}
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs.get("diff_ids"), list) else []
        inner = document.get("config") if isinstance(document.get("config"), dict) else {}
        edits = {
            "architecture": lambda: document.__setitem__("architecture", rng.choice(["arm64", "", 5, None, "s390x"])),
            "os": lambda: document.__setitem__("os", rng.choice(["windows", "", None, ["linux"]])),
            "variant": lambda: document.__setitem__("variant", rng.choice(["v7", "v8", 8])),
            "diff_ids-drop": lambda: rootfs.__setitem__("diff_ids", diff_ids[1:]),
            "diff_ids-swap": lambda: rootfs.__setitem__("diff_ids", diff_ids[::-1]),
            "diff_ids-zero": lambda: rootfs.__setitem__("diff_ids", [ZERO] * len(diff_ids)),
            "rootfs-type": lambda: rootfs.__setitem__("type", rng.choice(["overlay", None])),
            "env-null": lambda: inner.__setitem__("Env", None),
            "cmd-type": lambda: inner.__setitem__("Cmd", rng.choice(["sh", [1], {}])),
            "created": lambda: document.__setitem__("created", rng.choice(["yesterday", 0, "1970-01-01T00:00:00Z"])),
        }
    else:
        return f"edit-document {path.name[:12]} ({kind})"
    name = rng.choice(sorted(edits))
    edits[name]()
    layout.save(path, document, consistent=True, drop_old=rng.random() < 0.3)
    return f"edit-{kind} {path.name[:12]} {name}"


def edit_index_json(rng: random.Random, layout: CaseLayout) -> str:
    """index.json itself: entries duplicated, dropped, re-tagged, wrapped in a nested index, padded, replaced."""
    document = parse(layout.index.read_bytes()) if layout.index.is_file() else None
    if document is None or not isinstance(document.get("manifests"), list) or not document["manifests"]:
        return "edit-index.json (unparsable)"
    entries: list[Any] = document["manifests"]
    entry = rng.choice(entries)
    name = rng.choice(["twice", "twice-other-tag", "same-tag-two-images", "drop", "retag", "untag", "nest", "nest-deep",
                       "pad", "not-object", "schemaVersion", "mediaType-document", "unknown-field", "raw"])  # fmt: skip
    if name == "twice":
        entries.append(entry)
    elif name == "twice-other-tag" and isinstance(entry, dict):
        entries.append(dict(entry, annotations={REF_NAME: "other"}))
    elif name == "same-tag-two-images" and isinstance(entry, dict):
        others = [e for e in entries if isinstance(e, dict) and e.get("digest") != entry.get("digest")]
        if others:
            entries.append(dict(others[0], annotations=entry.get("annotations")))
    elif name == "drop":
        entries.remove(entry)
    elif name == "retag" and isinstance(entry, dict):
        entry["annotations"] = rng.choice(ANNOTATIONS)
        name += f" {show(entry['annotations'])}"
    elif name == "untag" and isinstance(entry, dict):
        entry.pop("annotations", None)
    elif name in ("nest", "nest-deep") and isinstance(entry, dict):
        inner = entry
        for _ in range(1 if name == "nest" else rng.choice([3, 20, 70])):
            data = dump({"schemaVersion": 2, "mediaType": MEDIA_TYPES[1], "manifests": [inner]})
            inner = {"mediaType": MEDIA_TYPES[1], "digest": layout.store(data), "size": len(data)}
        entries[entries.index(entry)] = dict(inner, annotations=entry.get("annotations"))
    elif name == "pad":
        document["annotations"] = {"pad": "x" * rng.choice([1000, 100_000, 5_000_000])}
    elif name == "not-object":
        value = rng.choice(ODD_VALUES)
        entries[entries.index(entry)] = value
        name += f" {show(value)}"
    elif name == "schemaVersion":
        document["schemaVersion"] = rng.choice([1, 3, None, "2"])
    elif name == "mediaType-document":
        document["mediaType"] = rng.choice(MEDIA_TYPES)
    elif name == "unknown-field":
        document["extra"] = {"a": [1, 2]}
    else:
        layout.index.write_bytes(rng.choice([b"", b"{}", b"[]", b"null", b'{"manifests":[]}', b"\xef\xbb\xbf{}",
                                             b'{"schemaVersion":2,"manifests":[{}]}', b"{" * 100_000]))  # fmt: skip
        return "edit-index.json raw"
    layout.index.write_bytes(dump(document))
    return f"edit-index.json {name}"


def alias_entry(rng: random.Random, layout: CaseLayout) -> str:
    """A second index.json entry (tag ``alias``) for a manifest or index already listed, disagreeing on size or type."""
    document = parse(layout.index.read_bytes()) if layout.index.is_file() else None
    if document is None or not isinstance(document.get("manifests"), list):
        return "alias (unparsable)"
    entries = [e for e in document["manifests"] if isinstance(e, dict) and isinstance(e.get("size"), int)]
    if not entries:
        return "alias (none)"
    entry = dict(rng.choice(entries), annotations={REF_NAME: "alias"})
    change = rng.choice(["size+1", "size-1", "mediaType"])
    if change == "mediaType":
        entry["mediaType"] = rng.choice(MEDIA_TYPES[:4])
    else:
        entry["size"] += 1 if change == "size+1" else -1
    document["manifests"].insert(rng.choice([0, len(document["manifests"])]), entry)
    layout.index.write_bytes(dump(document))
    return f"alias {change}"


def remove_blob(rng: random.Random, layout: CaseLayout) -> str:
    blobs = layout.blobs()
    if not blobs:
        return "remove (none)"
    path = rng.choice(blobs)
    path.unlink()
    return f"remove {path.name[:12]}"


def duplicate_blob(rng: random.Random, layout: CaseLayout) -> str:
    """A blob's bytes under another blob's name, or under a new name that is not their digest."""
    blobs = layout.blobs()
    if len(blobs) < 2:
        return "duplicate (none)"
    source, target = rng.sample(blobs, 2)
    if rng.random() < 0.5:
        target.write_bytes(source.read_bytes())
        return f"duplicate {source.name[:12]} over {target.name[:12]}"
    (source.parent / ("f" * 64)).write_bytes(source.read_bytes())
    return f"duplicate {source.name[:12]} as ffff..."


def swap_blobs(rng: random.Random, layout: CaseLayout) -> str:
    blobs = layout.blobs()
    if len(blobs) < 2:
        return "swap (none)"
    one, two = rng.sample(blobs, 2)
    data = one.read_bytes()
    one.write_bytes(two.read_bytes())
    two.write_bytes(data)
    return f"swap {one.name[:12]} {two.name[:12]}"


def symlink_blob(rng: random.Random, layout: CaseLayout) -> str:
    """A blob replaced by a symbolic link: to the same bytes outside the layout, another blob, nowhere, itself."""
    blobs = layout.blobs()
    if not blobs:
        return "symlink (none)"
    path = rng.choice(blobs)
    data = path.read_bytes()
    path.unlink()
    kind = rng.choice(["outside", "other-blob", "dangling", "loop", "directory"])
    if kind == "outside":
        outside = layout.root.parent / f"outside-{path.name}"
        outside.write_bytes(data)
        path.symlink_to(outside)
    elif kind == "other-blob" and len(blobs) > 1:
        path.symlink_to(rng.choice([b for b in blobs if b != path]))
    elif kind == "dangling":
        path.symlink_to(layout.root / "nowhere")
    elif kind == "loop":
        path.symlink_to(path)
    else:
        path.mkdir()
    return f"symlink {path.name[:12]} {kind}"


def rehash_sha512(rng: random.Random, layout: CaseLayout) -> str:
    """A blob stored under its sha512 digest, every reference re-pointed (the sha256 file kept or removed)."""
    blobs = [p for p in layout.blobs() if p.parent.name == "sha256"]
    if not blobs:
        return "sha512 (none)"
    path = rng.choice(blobs)
    data = path.read_bytes()
    new = layout.store(data, "sha512")
    if rng.random() < 0.5:
        path.unlink()
    layout.repoint(layout.digest_of(path), new, len(data))
    return f"sha512 {path.name[:12]}"


def leftovers(rng: random.Random, layout: CaseLayout) -> str:
    """Temporary files of a killed writer, stray files, a directory named like a blob."""
    name = rng.choice(["tmp-blob", "tmp-dir", "tmp-root", "stray", "blob-dir", "other-algorithm"])
    blobs = layout.root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    if name == "tmp-blob":
        (blobs / ".pyoci-tmp-999999-x").write_bytes(b"partial")
    elif name == "tmp-dir":
        (layout.root / ".pyoci-tmp-999999-d").mkdir(exist_ok=True)
        (layout.root / ".pyoci-tmp-999999-d" / "f").write_bytes(b"x")
    elif name == "tmp-root":
        (layout.root / ".pyoci-tmp-999999-index.json").write_bytes(b"{}")
    elif name == "stray":
        (blobs / "README").write_bytes(b"not a blob")
    elif name == "blob-dir":
        (blobs / ("e" * 64)).mkdir(exist_ok=True)
    else:
        (layout.root / "blobs" / "md5").mkdir(exist_ok=True)
        (layout.root / "blobs" / "md5" / ("0" * 32)).write_bytes(b"x")
    return f"leftover {name}"


def edit_oci_layout(rng: random.Random, layout: CaseLayout) -> str:
    path = layout.root / "oci-layout"
    value = rng.choice([b'{"imageLayoutVersion":"2.0.0"}', b'{"imageLayoutVersion":1}', b"{}", b"[]", b"", None])
    if value is None:
        path.unlink(missing_ok=True)
        return "oci-layout removed"
    path.write_bytes(value)
    return f"oci-layout = {value!r}"


MUTATIONS: list[Mutation] = [
    flip_bits, flip_bits, truncate, edit_json, edit_json, edit_descriptor, edit_descriptor, edit_descriptor,
    edit_document, edit_document, edit_document, edit_index_json, edit_index_json, alias_entry, remove_blob,
    duplicate_blob, swap_blobs, symlink_blob, rehash_sha512, leftovers, edit_oci_layout,
]  # fmt: skip


# --- the contract -------------------------------------------------------------------------------------

KEPT = ("media type says", "diff_id mismatch", "corrupt", "schema config-schema.json", "' here and as '")
"""Problems of the source a copy or merge keeps: layer contents and config fields read as absent (and
the layer media type its bytes contradict, which may contradict another image's in a merge's destination)."""
SOUNDNESS = ("size: expected", "digest: expected", "is missing", "bytes differ", "diff_ids")
"""Words of a refusal for what verify checks too: never for a source verify accepts."""


@dataclass
class Case:
    seed: int
    number: int
    steps: list[str]
    shared: bool = False  # two or more descriptors name one digest
    outcomes: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"case {self.number} (PYOCI_FUZZ_SEED={self.seed}): {' | '.join(self.steps)}"


DIGEST = re.compile(r"sha(?:256|512):[0-9a-f]+")
_VOLATILE = re.compile(r"(?:sha256|sha512):[0-9a-fA-F]+|[0-9a-f]{32,}|/\S*?(?=:|\s|$)|\d+")


def category(message: str) -> str:
    """A message without paths, digests and numbers: what kind of outcome it was."""
    return _VOLATILE.sub("N", message)[:100]


def problem_key(problem: str) -> str:
    """A verify problem without the chain that reached it: the last node and what is wrong with it."""
    return _VOLATILE.sub("N", problem.rpartition(" -> ")[2])


def tags(layout: CaseLayout) -> list[str]:
    """The tags of index.json that a reference can name."""
    document = parse(layout.index.read_bytes()) if layout.index.is_file() else None
    entries = document.get("manifests") if document is not None else None
    names = set()
    for entry in entries if isinstance(entries, list) else []:
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
        if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            names.add(name)
    return sorted(names)


def has_shared(layout: CaseLayout) -> bool:
    counts = collections.Counter(d["digest"] for _, _, d in layout.descriptors() if isinstance(d["digest"], str))
    return any(n > 1 for n in counts.values())


def attempt(case: Case, what: str, action: Callable[[], T]) -> tuple[T | None, str | None]:
    """Run one command: its result, or the message of the ``PyociError`` it raised (checked to be one line)."""
    try:
        return action(), None
    except PyociError as exc:
        message = str(exc)
        assert message, f"{case.where}: {what}: an empty message"
        assert "\n" not in message and "\r" not in message, f"{case.where}: {what}: {message!r}"
        return None, message
    except Exception as exc:
        raise AssertionError(f"{case.where}: {what} raised {type(exc).__name__}: {exc!r:.300}") from exc


def check_output(case: Case, what: str, destination: Path, source_problems: list[str]) -> str:
    """A copy or merge that succeeded: the destination must pass verify with the schemas.

    Except for what copies keep (:data:`KEPT`), when verify found it in the source too: the same
    problem, or one about a blob verify already flagged in the source (where an earlier problem of
    that blob hid it).
    """
    report, error = attempt(case, f"verify after {what}", lambda: verify(destination, schemas_dir=SCHEMAS))
    assert report is not None, f"{case.where}: {what} succeeded, then verify failed: {error}"
    if not report.problems:
        return "ok"
    keys = {problem_key(p) for p in source_problems}
    flagged = {digest for p in source_problems for digest in DIGEST.findall(p)}

    def kept(problem: str) -> bool:
        node = problem.rpartition(" -> ")[2].partition(": ")[0]
        source_had = problem_key(problem) in keys or bool(set(DIGEST.findall(node)) & flagged)
        return source_had and any(kind in problem for kind in KEPT)

    assert all(kept(p) for p in report.problems), f"{case.where}: {what} succeeded but verify finds {report.problems}"
    return f"ok, kept from the source: {category(problem_key(min(report.problems)))}"


def refused(error: str) -> str:
    return f"refused: {category(error)}"


def run_case(
    number: int, seeds: list[Seed], target: Path, work: Path, fuzz_seed: int = SEED
) -> list[str]:
    """Mutate one seed, run every command on it and check the contract; the outcome of each command."""
    rng = random.Random(f"{fuzz_seed}-{number}")
    seed = rng.choice(seeds)
    case = Case(fuzz_seed, number, [f"{seed.name}:{seed.tag}"])
    root = work / f"case{number}"
    source = root / "source"
    shutil.copytree(seed.path, source, symlinks=True)
    layout = CaseLayout(source)
    for _ in range(rng.choice([1, 1, 2, 3])):
        case.steps.append(rng.choice(MUTATIONS)(rng, layout))
    case.shared = has_shared(layout)
    reference = f"oci:{source}:{seed.tag}" if rng.random() < 0.85 else str(source)
    case.steps.append(reference.replace(str(source), "SOURCE"))
    before = snapshot(source)
    started = time.monotonic()

    report, error = attempt(case, "verify", lambda: verify(source, schemas_dir=SCHEMAS))
    source_problems: list[str] = []
    if report is not None:
        for problem in report.problems:
            assert "\n" not in problem and "\r" not in problem, f"{case.where}: verify: {problem!r}"
        source_problems = list(report.problems)
        case.outcomes.append("verify: " + ("ok" if report.ok else "problems"))
        # each tag alone: what it finds belongs to the source too, and nothing when the whole layout passed
        for tag in tags(layout) if report.ok or case.shared else []:
            alone, _ = attempt(
                case, f"verify {tag}", lambda tag=tag: verify(f"oci:{source}:{tag}", schemas_dir=SCHEMAS)
            )
            if alone is not None:
                source_problems += alone.problems
                assert not (report.ok and alone.problems), (
                    f"{case.where}: verify accepted the layout, not its tag {tag}: {alone.problems}"
                )
    else:
        case.outcomes.append(f"verify: {refused(str(error))}")
    accepted = report is not None and report.ok

    _, error = attempt(case, "inspect", lambda: inspect(reference))
    case.outcomes.append("inspect: " + ("ok" if error is None else refused(error)))

    copied = root / "copy"
    _, error = attempt(case, "copy", lambda: copy(reference, f"oci:{copied}:c"))
    if error is None:
        case.outcomes.append("copy: " + check_output(case, "copy", copied, source_problems))
    else:
        assert not copied.exists(), f"{case.where}: copy failed ({error}) but created {sorted(snapshot(copied))[:5]}"
        assert not (accepted and any(word in error for word in SOUNDNESS)), (
            f"{case.where}: verify accepted the source, copy refused it: {error}"
        )
        case.outcomes.append(f"copy: {refused(error)}")

    merged = root / "merged"
    shutil.copytree(target, merged)
    kept = snapshot(merged)
    tag, replace = rng.choice(["keep", "new"]), rng.random() < 0.5
    _, error = attempt(case, "merge", lambda: merge([reference], f"oci:{merged}:{tag}", replace=replace))
    if error is None:
        case.outcomes.append(
            "merge: " + check_output(case, f"merge into {tag} (replace={replace})", merged, source_problems)
        )
    else:
        assert snapshot(merged) == kept, f"{case.where}: merge failed ({error}) and changed the destination"
        case.outcomes.append(f"merge: {refused(error)}")

    _, error = attempt(case, "gc dry run", lambda: gc(source, dry_run=True))
    case.outcomes.append("gc: " + ("ok" if error is None else refused(error)))

    assert snapshot(source) == before, f"{case.where}: a command wrote into the source layout"
    elapsed = time.monotonic() - started
    assert elapsed < CASE_SECONDS, f"{case.where}: took {elapsed:.1f} s"
    return case.outcomes


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Seed], Path]:
    need_shared()
    return make_seeds(tmp_path_factory.mktemp("seeds"))


def test_fuzz_layouts(seeds: tuple[list[Seed], Path], tmp_path: Path) -> None:
    seed_layouts, target = seeds
    outcomes: collections.Counter[str] = collections.Counter()
    for number in range(CASES):
        for outcome in run_case(number, seed_layouts, target, tmp_path):
            outcomes[outcome] += 1
        shutil.rmtree(tmp_path / f"case{number}")
    print(f"\nlayout fuzz: {CASES} cases, seed {SEED}")
    for outcome, count in sorted(outcomes.items()):
        print(f"{count:6d}  {outcome}")
    for command in ("copy", "merge"):
        succeeded = sum(n for kind, n in outcomes.items() if kind.startswith(f"{command}: ok"))
        refusals = sum(n for kind, n in outcomes.items() if kind.startswith(f"{command}: refused"))
        assert succeeded and refusals, (command, outcomes)  # both sides of the contract were exercised
    print(f"layout fuzz: {sum(outcomes.values())} outcomes")


# --- regressions: cases in which the fuzzer found a bug (seed 1), and the outcome each has now ---------

# Each case with its mutations, as a failure prints them (PYOCI_FUZZ_SEED=1):
CASE_ISDIR = 73  # mixed:m | symlink 450e21374ce4 directory | SOURCE (verify)
CASE_DANGLING = 721  # zstd:z | symlink f0ce88de2466 dangling | oci:SOURCE:z (copy)
CASE_LOOP = 302  # multi:m | symlink d137ea2e6d58 loop | oci:SOURCE:m (copy)
CASE_NEWLINE = 1134  # zstd:z | edit-descriptor index.json digest = 'sha256:ff68...\n' (verify)
CASE_SHA512 = 222  # single:1.0 | sha512 16183fd7394f (the manifest): verify accepts, copy refuses
CASE_LONGER = 2076  # single:1.0 | edit-descriptor 16183fd7394f size = 605 (the config's, 604 bytes)
CASE_ONCE = 32  # multi:m | alias size-1: verify passes the layout, not the tag alias
CASE_MEDIA_TYPE = 186  # single:1.0 | edit-descriptor 16183fd7394f mediaType = (zstd, for a gzip layer) | ...
CASE_DIFF_IDS = 6  # zstd:z | edit-config 450e21374ce4 diff_ids-drop
CASE_CONFIG = 124  # single:1.0 | edit-json dce598df6f94 [] = 1.5 (the config becomes a number)
CASE_SCHEMA = 47  # zstd:z | edit-manifest ff68b37c1bad artifactType (= 3)
CASE_MERGE_SIZE = 773  # mixed:m | edit-descriptor 16183fd7394f size = 2**63 (a layer the destination holds)


REGRESSIONS = [
    pytest.param(CASE_ISDIR, "inspect: refused: N: cannot read: not a regular file", id="blob-is-a-directory"),
    pytest.param(CASE_DANGLING, "copy: refused: N: blob N is missing", id="dangling-blob-link"),
    pytest.param(CASE_LOOP, "copy: refused: N: cannot read: Too many levels of symbolic links", id="blob-link-loop"),
    pytest.param(CASE_NEWLINE, "verify: refused: N: digest N\\n: encoded part", id="line-break-in-message"),
    pytest.param(CASE_SHA512, "copy: ok", id="sha512-manifest"),
    pytest.param(CASE_LONGER, "copy: refused: N: size: expected N bytes, got N", id="document-shorter-than-declared"),
    pytest.param(CASE_ONCE, "verify: problems", id="blob-checked-once"),
    pytest.param(
        CASE_MEDIA_TYPE, "copy: ok, kept from the source: layer N N: media type says zstd but the bytes are gzip",
        id="copy-keeps-wrong-layer-media-type",
    ),
    pytest.param(
        CASE_DIFF_IDS, "copy: refused: N: manifest N: N layers but the config lists N diff_ids",
        id="copy-refuses-diff-id-count",
    ),
    pytest.param(
        CASE_CONFIG, "copy: refused: N: manifest N: config: image config is not a JSON object",
        id="copy-refuses-config-that-is-not-an-object",
    ),
    pytest.param(
        CASE_SCHEMA, "copy: refused: N: manifest N: 'artifactType' must be a media type string",
        id="copy-refuses-schema-violation",
    ),
    pytest.param(
        CASE_MERGE_SIZE, "merge: refused: N: manifest N: descriptor N: 'size' must be an integer from N to N^N-N",
        id="merge-refuses-size-beyond-int64",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("number", "expected"), REGRESSIONS)
def test_fuzz_layouts_regression(seeds: tuple[list[Seed], Path], tmp_path: Path, number: int, expected: str) -> None:
    seed_layouts, target = seeds
    outcomes = run_case(number, seed_layouts, target, tmp_path, fuzz_seed=1)
    assert any(outcome.startswith(expected) for outcome in outcomes), outcomes
