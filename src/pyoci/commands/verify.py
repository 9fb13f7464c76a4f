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

from pyoci import compression, mediatype, schemas
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest, Digester
from pyoci.errors import BlobNotFoundError, DigestMismatchError, FormatError, LayoutError, TagError
from pyoci.jsonio import load_json
from pyoci.layout.store import INDEX_FILE, LAYOUT_FILE, ImageLayout
from pyoci.manifest import MAX_INDEX_DEPTH, ImageConfig, Index, Manifest
from pyoci.reference import layout_directory

_CHUNK = 1 << 20


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

    def document(self, descriptor: Descriptor, where: str) -> bytes | None:
        try:
            data = self.layout.read_blob(descriptor)
        except (BlobNotFoundError, DigestMismatchError, LayoutError) as exc:
            self.problem(f"{where}: {exc}")
            return None
        self.report.blobs_checked += descriptor.digest not in self.checked
        self.checked.add(descriptor.digest)
        return data

    def entry(self, descriptor: Descriptor, where: str, depth: int = 0) -> None:
        if descriptor.media_type in mediatype.INDEX_TYPES:
            if depth >= MAX_INDEX_DEPTH:
                self.problem(f"{where}: image indexes nested more than {MAX_INDEX_DEPTH} deep")
                return
            self.index(descriptor, where, depth)
        elif descriptor.media_type in mediatype.MANIFEST_TYPES:
            self.manifest(descriptor, where)
        else:
            self.problem(f"{where}: {descriptor.digest}: unexpected media type {descriptor.media_type!r}")

    def parsed(self, descriptor: Descriptor, where: str, schema_file: str) -> tuple[bytes, Any] | None:
        """Read, parse and schema-check one JSON document; None (with the problem noted) on failure."""
        raw = self.document(descriptor, where)
        if raw is None:
            return None
        try:
            obj = load_json(raw, where)
        except FormatError as exc:
            self.problem(str(exc))
            return None
        self.validate(schema_file, obj, where)
        self.media_type_matches(obj, descriptor, where)
        return raw, obj

    def index(self, descriptor: Descriptor, where: str, depth: int) -> None:
        where = f"{where} -> index {descriptor.digest}"
        document = self.parsed(descriptor, where, schemas.INDEX_SCHEMA)
        if document is None:
            return
        try:
            index = Index.parse(document[0], where)
        except FormatError as exc:
            self.problem(str(exc))
            return
        for child in index.manifests:
            self.entry(child, where, depth + 1)

    def manifest(self, descriptor: Descriptor, where: str) -> None:
        where = f"{where} -> manifest {descriptor.digest}"
        document = self.parsed(descriptor, where, schemas.MANIFEST_SCHEMA)
        if document is None:
            return
        try:
            manifest = Manifest.parse(document[0], where)
        except FormatError as exc:
            self.problem(str(exc))
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

    def media_type_matches(self, obj: Any, descriptor: Descriptor, where: str) -> None:
        declared = obj.get("mediaType") if isinstance(obj, dict) else None
        if declared is not None and declared != descriptor.media_type:
            self.problem(f"{where}: mediaType {declared!r} differs from its descriptor's {descriptor.media_type!r}")

    def layer(self, descriptor: Descriptor, expected: Digest | None, where: str) -> None:
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
    for descriptor in entries:
        checker.entry(descriptor, f"{INDEX_FILE} ({descriptor.ref_name or 'untagged'})")
    for leftover in store.temp_files():
        report.problems.append(f"{leftover}: leftover temporary file")
    return report
