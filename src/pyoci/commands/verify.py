"""``pyoci verify``: re-read everything reachable from a layout's index.json and report every problem.

Checks (image-spec ``image-layout.md``, ``descriptor.md``, ``manifest.md``, ``image-index.md``,
``config.md``): each blob exists and matches its descriptor's digest and size; each manifest's and
index's ``mediaType`` matches its descriptor; each layer's bytes are compressed as its media type
says and decompress to the config's diff_id; every JSON document validates against the OCI schemas
(when a schema directory is found, see :mod:`pyoci.schemas`); no temporary files are left over.
Each config is read as ``convert`` reads it (:meth:`pyoci.manifest.ImageConfig.parse`): what convert
refuses is a problem here, and so is what it keeps with a warning (a null field the schema types).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyoci import compression, mediatype, schemas, walk
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest, Digester
from pyoci.errors import BlobNotFoundError, DigestMismatchError, FormatError, LayoutError, PyociError, TagError
from pyoci.jsonio import load_json
from pyoci.layout.store import INDEX_FILE, LAYOUT_FILE, ImageLayout
from pyoci.manifest import ImageConfig, Manifest
from pyoci.reference import layout_directory

_CHUNK = 1 << 20
FOREIGN_LAYER_NOTE = (
    "non-distributable layers (descriptors with 'urls') absent from the layout were not checked:"
    " clients fetch them from their urls"
)


@dataclass
class VerifyReport:
    """The findings of :func:`verify`.

    Attributes:
        layout: the layout directory checked.
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


class _Verifier:
    def __init__(self, layout: ImageLayout, report: VerifyReport, schema_set: schemas.SchemaSet | None) -> None:
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
        data = self.layout.read_blob(descriptor)
        self.report.blobs_checked += descriptor.digest not in self.checked
        self.checked.add(descriptor.digest)
        return data

    def document(self, descriptor: Descriptor, where: str) -> bytes | None:
        try:
            return self.read_document(descriptor)
        except (LayoutError, DigestMismatchError) as exc:
            self.problem(f"{where}: {exc}")
            return None

    def check(self, entries: list[Descriptor]) -> None:
        """Walk ``entries`` (index.json entries) and check every index, manifest, config and layer."""
        paths: dict[Digest, str] = {}

        def where(node: walk.Node) -> str:
            if node.parent is None:
                base = f"{INDEX_FILE} ({node.descriptor.ref_name or 'untagged'})"
            else:
                base = paths.get(node.parent.digest, str(node.parent.digest))
            return f"{base} -> {node.kind} {node.digest}"

        def failed(node: walk.Node, exc: PyociError) -> None:
            self.problem(f"{where(node)}: {exc}")

        for node in walk.walk(self, entries, on_error=failed):
            here = paths[node.digest] = where(node)
            if node.kind == walk.UNKNOWN:
                self.problem(f"{here}: unexpected media type {node.descriptor.media_type!r}")
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
            with self.layout.blob_file(descriptor) as reader:
                reader.drain()
        except (BlobNotFoundError, DigestMismatchError) as exc:
            self.problem(f"{where}: {exc}")
            return
        self.report.blobs_checked += 1
        self.checked.add(descriptor.digest)

    def layer(self, descriptor: Descriptor, expected: Digest | None, where: str) -> None:
        if descriptor.urls and not self.layout.has_blob(descriptor.digest):
            _add_note(self.report, FOREIGN_LAYER_NOTE)
            return
        declared = mediatype.layer_compression(descriptor.media_type)
        if declared is None:
            self.problem(f"{where}: {descriptor.media_type!r} is not a layer media type")
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
            with self.layout.blob_file(descriptor) as reader:
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
        except (BlobNotFoundError, DigestMismatchError) as exc:
            self.problem(f"{where}: {exc}")
        except compression.DECODE_ERRORS as exc:
            self.problem(f"{where}: corrupt {declared.value} data: {exc}")
        return None


def _add_note(report: VerifyReport, note: str) -> None:
    if note not in report.notes:
        report.notes.append(note)


def verify(layout: str | os.PathLike[str], *, schemas_dir: str | os.PathLike[str] | None = None) -> VerifyReport:
    """Check a layout (``DIR`` or ``oci:DIR[:TAG]``; with a tag, only that image) and report all problems.

    Args:
        layout: the layout reference.
        schemas_dir: directory of the OCI JSON schemas; see :func:`pyoci.schemas.find_schema_dir`.

    Returns:
        A report; ``report.ok`` is False when any problem was found.

    Raises:
        LayoutError: the directory is not an OCI image layout at all.
        TagError: the tag is not in index.json.
        FormatError: a malformed reference.
    """
    ref = layout_directory(layout, "verify reads")
    store = ImageLayout.open(ref.path)
    report = VerifyReport(store.root)
    found = schemas.find_schema_dir(schemas_dir)
    if found is None:
        report.notes.append(
            f"JSON schema validation skipped: no schema directory (use --schemas or ${schemas.ENV_VAR})"
        )
    checker = _Verifier(store, report, schemas.SchemaSet(found) if found else None)
    checker.validate(
        schemas.LAYOUT_SCHEMA, load_json((store.root / LAYOUT_FILE).read_bytes(), LAYOUT_FILE), LAYOUT_FILE
    )
    index = store.read_index()
    checker.validate(schemas.INDEX_SCHEMA, load_json(index.raw, INDEX_FILE), INDEX_FILE)
    entries = list(index.manifests)
    if ref.tag is not None:
        entries = [d for d in entries if d.ref_name == ref.tag]
        if not entries:
            raise TagError(f"{store.root}: no image tagged {ref.tag!r} in {INDEX_FILE}")
    checker.check(entries)
    for leftover in store.temp_files():
        report.problems.append(f"{leftover}: leftover temporary file")
    return report
