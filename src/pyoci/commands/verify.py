"""``pyoci verify``: re-read everything a layout's index.json or a static tree's files reach; report every problem.

Checks (image-spec ``image-layout.md``, ``descriptor.md``, ``manifest.md``, ``image-index.md``,
``config.md``): each blob exists and matches its descriptor's digest and size, and every
descriptor of one digest agrees (see :mod:`pyoci.walk`); each manifest's and index's ``mediaType``
matches its descriptor (an entry of another media type is checked against its digest and
otherwise ignored, as image-spec ``image-index.md`` requires); each layer of a known layer media
type is compressed as it says and decompresses to the config's diff_id (a layer of another type,
which image-spec ``manifest.md`` allows, is checked against its digest, with a note); every JSON
document validates against the OCI schemas (when a schema directory is found, see
:mod:`pyoci.schemas`); no temporary files are left over.
Each config is read as ``convert`` reads it (:meth:`pyoci.manifest.ImageConfig.parse`): what convert
refuses is a problem here, and so is what it keeps with a warning (a null field the schema types).

A static registry tree (``static:DIR[:REPO[:TAG]]``, :mod:`pyoci.targets.static`) is checked from
every file a host serves: each tag and each manifest by digest is walked as above (a by-digest file
must hash to its name; a tag needs its by-digest file, which clients fetch after resolving it; the
media type its file name stores, which the host sends as ``Content-Type``, must be the document's),
every ``tags/list`` and ``_catalog`` must list exactly what the tree holds, and a file shadowed by
another of the same reference (never served) is reported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pyoci import compression, mediatype, schemas, walk
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest, Digester
from pyoci.errors import (
    DigestMismatchError,
    FormatError,
    LayoutError,
    PyociError,
    TagError,
    one_line,
)
from pyoci.jsonio import dump_json, load_json
from pyoci.layout.store import INDEX_FILE, LAYOUT_FILE, ImageLayout
from pyoci.manifest import ImageConfig, Manifest
from pyoci.reference import StaticReference, expect, layout_directory, parse
from pyoci.streams import VerifyingReader
from pyoci.targets.static import NGINX_CONF, NGINX_LOCATIONS, StaticTree, nginx_config, nginx_locations, read_small

_CHUNK = 1 << 20
MAX_SCHEMA_ENTRIES = 10_000
"""index.json entries validated against the JSON schema (jsonschema takes about half a millisecond an entry)."""
UNKNOWN_ENTRY_NOTE = (
    "entries of media types that are neither manifests nor indexes were checked against their digests"
    " and otherwise ignored, as image-spec image-index.md requires"
)
UNKNOWN_LAYER_NOTE = (
    "layers of media types pyoci does not know (such as the in-toto statements of buildx attestations)"
    " were checked against their digests, not as tar layers against the config's diff_ids"
)
FOREIGN_LAYER_NOTE = (
    "non-distributable layers (descriptors with 'urls') absent from the layout were not checked:"
    " clients fetch them from their urls"
)


@dataclass
class VerifyReport:
    """The findings of :func:`verify`.

    Attributes:
        layout: the layout (or static tree) directory checked.
        problems: one message per problem found (empty when the layout is sound).
        notes: remarks that are not problems (a skipped schema check, an exempted rule).
        blobs_checked: how many distinct blobs were read and hashed.
    """

    layout: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blobs_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "layout": str(self.layout),
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "blobs_checked": self.blobs_checked,
        }


class _Store(Protocol):
    """What the verifier reads: a layout (:class:`_LayoutStore`) or a static tree's repository."""

    @property
    def name(self) -> str: ...

    def read_document(self, descriptor: Descriptor) -> bytes: ...

    def open_blob(self, descriptor: Descriptor) -> AbstractContextManager[VerifyingReader]: ...

    def has_blob(self, descriptor: Descriptor) -> bool: ...


class _LayoutStore:
    """An :class:`ImageLayout` as a :class:`_Store`."""

    def __init__(self, layout: ImageLayout) -> None:
        self.layout = layout

    @property
    def name(self) -> str:
        return self.layout.name

    def read_document(self, descriptor: Descriptor) -> bytes:
        return self.layout.read_blob(descriptor)

    def open_blob(self, descriptor: Descriptor) -> AbstractContextManager[VerifyingReader]:
        return self.layout.blob_file(descriptor)

    def has_blob(self, descriptor: Descriptor) -> bool:
        return self.layout.has_blob(descriptor.digest)


class _Verifier:
    def __init__(self, layout: _Store, report: VerifyReport, schema_set: schemas.SchemaSet | None) -> None:
        self.layout = layout
        self.report = report
        self.schemas = schema_set
        self.checked: set[Digest] = set()
        self.diff_ids: dict[Digest, Digest | None] = {}

    def problem(self, message: str) -> None:
        self.report.problems.append(message)

    def validate(self, schema_file: str, document: Any, where: str) -> None:
        if self.schemas is None:
            return
        for message in self.schemas.errors(schema_file, document):
            self.problem(f"{where}: schema {schema_file}: {message}")

    @property
    def name(self) -> str:
        """The layout directory (the walk's :class:`~pyoci.walk.DocumentReader`)."""
        return self.layout.name

    def read_document(self, descriptor: Descriptor) -> bytes:
        """Read one document for the walk, counting it as checked."""
        data = self.layout.read_document(descriptor)
        self.report.blobs_checked += descriptor.digest not in self.checked
        self.checked.add(descriptor.digest)
        return data

    def document(self, descriptor: Descriptor, where: str) -> bytes | None:
        try:
            return self.read_document(descriptor)
        except (LayoutError, DigestMismatchError) as exc:
            self.problem(f"{where}: {exc}")
            return None

    def check(self, entries: list[Descriptor], labels: Mapping[Digest, str] | None = None) -> None:
        """Walk ``entries`` and check every index, manifest, config and layer.

        Args:
            entries: index.json entries, or a static repository's tags and manifests by digest.
            labels: how messages name each entry (default: ``index.json (TAG)``).
        """
        paths: dict[Digest, str] = {}

        def where(node: walk.Node) -> str:
            if node.parent is None and labels is not None:
                base = labels.get(node.digest, str(node.digest))
            elif node.parent is None:
                base = f"{INDEX_FILE} ({node.descriptor.ref_name or 'untagged'})"
            else:
                base = paths.get(node.parent.digest, str(node.parent.digest))
            return f"{base} -> {node.kind} {node.digest}"

        def failed(node: walk.Node, exc: PyociError) -> None:
            self.problem(f"{where(node)}: {exc}")

        for node in walk.walk(self, entries, on_error=failed):
            here = paths[node.digest] = where(node)
            if node.kind == walk.UNKNOWN:
                _add_note(self.report, UNKNOWN_ENTRY_NOTE)
                self.blob(node.descriptor, here)
            elif node.raw is not None and node.kind == walk.INDEX:
                self.validate(schemas.INDEX_SCHEMA, load_json(node.raw, here), here)
            elif node.raw is not None and isinstance(node.document, Manifest):
                self.validate(schemas.MANIFEST_SCHEMA, load_json(node.raw, here), here)
                self.manifest(node.document, here)

    def manifest(self, manifest: Manifest, where: str) -> None:
        if manifest.config.media_type not in mediatype.CONFIG_TYPES:
            # an artifact (a signature, an SBOM): its blobs are checked, not read as an image
            for blob in (manifest.config, *manifest.layers):
                self.blob(blob, f"{where} -> blob {blob.digest}")
            return
        if not manifest.layers:
            _add_note(self.report, schemas.EMPTY_LAYERS_EXEMPTION)
        config_raw = self.document(manifest.config, f"{where} -> config")
        diff_ids: tuple[Digest, ...] = ()
        if config_raw is not None:
            try:
                config = ImageConfig.parse(config_raw, f"{where} -> config {manifest.config.digest}")
                diff_ids = config.diff_ids
                self.validate(schemas.CONFIG_SCHEMA, load_json(config_raw, where), f"{where} -> config")
                if self.schemas is None:  # else the schema check has reported each of them
                    self.report.problems.extend(config.warnings)
            except FormatError as exc:
                self.problem(str(exc))
        if config_raw is not None and len(diff_ids) != len(manifest.layers):
            self.problem(f"{where}: {len(manifest.layers)} layers but the config lists {len(diff_ids)} diff_ids")
        for position, layer in enumerate(manifest.layers):
            expected = diff_ids[position] if position < len(diff_ids) else None
            self.layer(layer, expected, f"{where} -> layer {position} {layer.digest}")

    def blob(self, descriptor: Descriptor, where: str) -> None:
        if descriptor.digest in self.checked:
            return
        try:
            with self.layout.open_blob(descriptor) as reader:
                reader.drain()
        except (LayoutError, DigestMismatchError) as exc:
            self.problem(f"{where}: {exc}")
            return
        self.report.blobs_checked += 1
        self.checked.add(descriptor.digest)

    def layer(self, descriptor: Descriptor, expected: Digest | None, where: str) -> None:
        if descriptor.urls and not self.layout.has_blob(descriptor):
            _add_note(self.report, FOREIGN_LAYER_NOTE)
            return
        declared = mediatype.layer_compression(descriptor.media_type)
        if walk.is_document_type(descriptor.media_type):
            self.problem(f"{where}: {descriptor.media_type!r} is not a layer media type")
            return
        if declared is None:
            _add_note(self.report, UNKNOWN_LAYER_NOTE)
            self.blob(descriptor, where)
            return
        if descriptor.digest not in self.diff_ids:
            self.diff_ids[descriptor.digest] = self.read_layer(descriptor, declared, where)
            self.report.blobs_checked += descriptor.digest not in self.checked
            self.checked.add(descriptor.digest)
        actual = self.diff_ids[descriptor.digest]
        if actual is not None and expected is not None and actual != expected:
            self.problem(f"{where}: diff_id mismatch: config says {expected}, layer data is {actual}")

    def read_layer(self, descriptor: Descriptor, declared: mediatype.Compression, where: str) -> Digest | None:
        try:
            with self.layout.open_blob(descriptor) as reader:
                actual, _, whole = compression.sniff(reader)
                if actual is not declared:
                    self.problem(f"{where}: media type says {declared.value} but the bytes are {actual.value}")
                    reader.drain()
                    return None
                plain = compression.open_reader(actual, whole)
                digester = Digester()
                while chunk := plain.read(_CHUNK):
                    digester.update(chunk)
                reader.drain()
                return digester.finish()
        except (LayoutError, DigestMismatchError) as exc:
            self.problem(f"{where}: {exc}")
        except compression.DECODE_ERRORS as exc:
            if (failed := compression.io_error(exc)) is not None:
                self.problem(f"{where}: cannot read: {failed.strerror}")
            else:
                self.problem(f"{where}: corrupt {declared.value} data: {exc}")
        return None


def _add_note(report: VerifyReport, note: str) -> None:
    if note not in report.notes:
        report.notes.append(note)


def _schema_set(report: VerifyReport, schemas_dir: str | os.PathLike[str] | None) -> schemas.SchemaSet | None:
    found = schemas.find_schema_dir(schemas_dir)
    if found is None:
        report.notes.append(
            f"JSON schema validation skipped: no schema directory (use --schemas or ${schemas.ENV_VAR})"
        )
    return schemas.SchemaSet(found) if found else None


def verify(layout: str | os.PathLike[str], *, schemas_dir: str | os.PathLike[str] | None = None) -> VerifyReport:
    """Check a layout (``DIR`` or ``oci:DIR[:TAG]``; with a tag, only that image) or a static tree, report all problems.

    Args:
        layout: the layout reference, or ``static:DIR[:REPO[:TAG]]`` (see the module docstring).
        schemas_dir: directory of the OCI JSON schemas; see :func:`pyoci.schemas.find_schema_dir`.

    Returns:
        A report; ``report.ok`` is False when any problem was found. Each problem is one line
        (line breaks quoted from file names or documents are escaped, see :func:`pyoci.errors.one_line`).

    Raises:
        LayoutError: the directory is not an OCI image layout (or static tree) at all.
        TagError: the tag is not in index.json (or the tree's repository).
        FormatError: a malformed reference.
    """
    parsed = parse(layout, bare="layout") if not isinstance(layout, os.PathLike) else None
    if parsed is not None:
        expect(parsed, ("oci", "static"), "verify reads")
    if isinstance(parsed, StaticReference):
        report = _verify_static(parsed, schemas_dir)
    else:
        report = _verify_layout(layout, schemas_dir)
    report.problems = [one_line(problem) for problem in report.problems]
    return report


def _verify_layout(layout: str | os.PathLike[str], schemas_dir: str | os.PathLike[str] | None) -> VerifyReport:
    """Check a layout, or one tag of it (see :func:`verify`)."""
    ref = layout_directory(layout, "verify reads")
    store = ImageLayout.open(ref.path)
    report = VerifyReport(store.root)
    checker = _Verifier(_LayoutStore(store), report, _schema_set(report, schemas_dir))
    checker.validate(
        schemas.LAYOUT_SCHEMA, load_json((store.root / LAYOUT_FILE).read_bytes(), LAYOUT_FILE), LAYOUT_FILE
    )
    index = store.read_index()
    document = load_json(index.raw, INDEX_FILE)
    listed = document.get("manifests") if isinstance(document, dict) else None
    if checker.schemas is not None and isinstance(listed, list) and len(listed) > MAX_SCHEMA_ENTRIES:
        document = {**document, "manifests": listed[:MAX_SCHEMA_ENTRIES]}
        report.notes.append(
            f"{INDEX_FILE} holds {len(listed)} entries; the schema check covered the first {MAX_SCHEMA_ENTRIES}"
            " (every entry is still read and checked as a descriptor)"
        )
    checker.validate(schemas.INDEX_SCHEMA, document, INDEX_FILE)
    entries = list(index.manifests)
    if ref.tag is not None:
        entries = [d for d in entries if d.ref_name == ref.tag]
        if not entries:
            raise TagError(f"{store.root}: no image tagged {ref.tag!r} in {INDEX_FILE}")
    checker.check(entries)
    for leftover in store.temp_files():
        report.problems.append(f"{leftover}: leftover temporary file")
    return report


LEGACY_NOTE = (
    "manifest files without a kind (written by an earlier pyoci): read as they are; the next export or"
    " 'pyoci gc' upgrades them, and nginx's fixed configuration serves them only after that"
)


def _verify_static(ref: StaticReference, schemas_dir: str | os.PathLike[str] | None) -> VerifyReport:
    """Check a static tree, one repository, or one tag of it (see the module docstring)."""
    tree = StaticTree(ref.root)
    tree.check_exists()
    report = VerifyReport(tree.root)
    schema_set = _schema_set(report, schemas_dir)
    names = tree.repositories()
    if ref.repository is not None:
        if ref.repository not in names:
            raise TagError(f"{ref}: no repository {ref.repository!r} in the tree")
        names = [ref.repository]
    listed: dict[str, list[str]] = {}
    for name in names:
        repo = tree.repository(name)
        try:
            served, shadowed = repo.scan()
        except FormatError as exc:
            report.problems.append(str(exc))
            continue
        for file in shadowed:
            report.problems.append(f"{file.path}: shadowed by {served[file.reference].path.name}: never served")
        if any(file.legacy for file in served.values()):
            _add_note(report, LEGACY_NOTE)
        files = sorted(served.values(), key=lambda f: (not f.is_tag, f.reference))
        if ref.tag is not None or ref.digest is not None:
            wanted = ref.tag or str(ref.digest)
            files = [f for f in files if f.reference == wanted]
            if not files:
                raise TagError(f"{ref}: no {'tag' if ref.tag else 'manifest'} {wanted!r} in {repo.name}")
        entries: list[Descriptor] = []
        labels: dict[Digest, str] = {}
        for file in files:
            raw = read_small(file.path)
            digest = Digest.of_bytes(raw) if file.is_tag else Digest.parse(file.reference)
            entries.append(Descriptor(file.media_type, digest, len(raw)))
            labels.setdefault(digest, f"{repo.name}{':' if file.is_tag else '@'}{file.reference}")
        _Verifier(repo, report, schema_set).check(entries, labels)
        listed[name] = [f.reference for f in files if f.is_tag]
        if ref.tag is None and ref.digest is None:
            _check_listing(report, repo.directory / "tags" / "list", {"name": name, "tags": sorted(listed[name])})
    if ref.repository is None:
        _check_listing(report, tree.v2 / "_catalog", {"repositories": names})
        _check_listing(report, tree.v2 / "index.html", {})
        for conf, text in ((NGINX_CONF, nginx_config(tree.root)), (NGINX_LOCATIONS, nginx_locations())):
            path = tree.config / conf
            if not path.is_file() or path.read_text(errors="replace") != text:
                _add_note(report, f"{path}: not this tree's fixed configuration (the next export rewrites it)")
    for leftover in tree.temp_files():
        report.problems.append(f"{leftover}: leftover temporary file")
    return report


def _check_listing(report: VerifyReport, path: Path, expected: dict[str, Any]) -> None:
    """Report ``path`` unless it holds ``expected`` exactly as pyoci writes it."""
    try:
        actual = read_small(path)
    except FileNotFoundError:
        report.problems.append(f"{path}: missing")
        return
    if actual != dump_json(expected):
        report.problems.append(f"{path}: does not list what the tree holds: expected {dump_json(expected).decode()}")
