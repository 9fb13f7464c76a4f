"""Layouts as other tools and accidents leave them: linked, odd or contradictory blobs; BuildKit attestations."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.images import single_layout
from support.layouts import blob, blob_path, document, entry, snapshot

from pyoci import copy, inspect, merge, verify
from pyoci.commands.verify import UNKNOWN_LAYER_NOTE
from pyoci.descriptor import REF_NAME
from pyoci.errors import DigestMismatchError, LayoutError, PyociError
from pyoci.layout.store import ImageLayout
from pyoci.manifest import Index, Manifest
from pyoci.mediatype import IMAGE_CONFIG, IMAGE_INDEX, IMAGE_MANIFEST
from pyoci.platform import Platform
from pyoci.walk import ATTESTATION_MANIFEST, DOCKER_REFERENCE_TYPE

IN_TOTO = "application/vnd.in-toto+json"


def put(layout: Path, data: bytes) -> str:
    """Store ``data`` as a blob of ``layout``; its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob_path(layout, digest).write_bytes(data)
    return digest


def retag(layout: Path, manifest: dict[str, object], tag: str) -> str:
    """Store ``manifest`` and point index.json's only entry at it, tagged ``tag``; its digest."""
    raw = json.dumps(manifest).encode()
    digest = put(layout, raw)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": IMAGE_MANIFEST, "digest": digest, "size": len(raw)}]}
    index["manifests"][0]["annotations"] = {REF_NAME: tag}
    (layout / "index.json").write_text(json.dumps(index))
    return digest


def test_a_blob_that_is_a_symbolic_link_is_copied_as_a_regular_file(tmp_path: Path) -> None:
    source = single_layout(tmp_path / "source")
    layer = document(source)["layers"][0]["digest"]
    elsewhere = tmp_path / "store" / "layer"
    elsewhere.parent.mkdir()
    shutil.move(blob_path(source, layer), elsewhere)
    blob_path(source, layer).symlink_to(elsewhere)  # as a layout built from a Nix store may hold them
    copy(f"oci:{source}:1.0", f"oci:{tmp_path / 'copy'}:c")
    copied = blob_path(tmp_path / "copy", layer)
    assert not copied.is_symlink() and copied.read_bytes() == elsewhere.read_bytes()
    assert verify(tmp_path / "copy").ok


def test_an_unreadable_source_blob_is_named_not_the_destinations_temporary_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyoci.targets import layout as layout_target

    source = single_layout(tmp_path / "source")

    def denied(path: Path, mode: str) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(layout_target, "open", denied, raising=False)  # as chmod 000 for a user who is not root
    blobs = re.escape(str(source / "blobs" / "sha256"))
    with pytest.raises(LayoutError, match=rf"^{blobs}/[0-9a-f]{{64}}: cannot read: Permission denied$"):
        copy(f"oci:{source}:1.0", f"oci:{tmp_path / 'copy'}:c")
    assert not (tmp_path / "copy").exists()


def test_a_blob_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    source = single_layout(tmp_path / "source")
    config = document(source)["config"]["digest"]
    blob_path(source, config).unlink()
    os.mkfifo(blob_path(source, config))  # opening it to read would wait for a writer forever
    command = [sys.executable, "-m", "pyoci", "verify", str(source)]
    proc = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 1, proc
    assert f"{blob_path(source, config)}: cannot read: not a regular file" in proc.stdout.decode(), proc.stdout
    with pytest.raises(PyociError, match=r": cannot read: not a regular file$"):
        copy(f"oci:{source}:1.0", f"oci:{tmp_path / 'copy'}:c")
    assert not (tmp_path / "copy").exists()


def test_a_size_the_destination_contradicts_is_refused(tmp_path: Path) -> None:
    destination = single_layout(tmp_path / "destination")  # holds the layer with its true size
    kept = snapshot(destination)
    source = single_layout(tmp_path / "source")
    manifest = document(source)
    layer = manifest["layers"][0]
    layer["size"] += 1
    retag(source, manifest, "1.0")
    with pytest.raises(DigestMismatchError, match=f"size: expected {layer['size']} bytes, got {layer['size'] - 1}$"):
        merge([f"oci:{source}:1.0"], f"oci:{destination}:new")
    assert snapshot(destination) == kept


def test_descriptors_of_one_blob_that_disagree_are_reported(tmp_path: Path) -> None:
    layout = single_layout(tmp_path / "layout")
    first = entry(layout)
    alias = {**first, "size": first["size"] + 1, "annotations": {REF_NAME: "alias"}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [first, alias]}))
    report = verify(layout)
    assert report.problems == [
        f"index.json (alias) -> manifest {first['digest']}: {layout}: manifest {first['digest']}: "
        f"declared as {first['size'] + 1} bytes here and as {first['size']} bytes elsewhere"
    ]
    size = first["size"]
    with pytest.raises(DigestMismatchError, match=f"size: expected {size + 1} bytes, got {size}$"):
        copy(f"oci:{layout}:alias", f"oci:{tmp_path / 'copy'}:c")


def test_a_line_break_in_a_document_never_splits_a_message(tmp_path: Path) -> None:
    layout = single_layout(tmp_path / "layout")
    first = entry(layout)
    (layout / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [{**first, "digest": first["digest"] + "\n"}]})
    )
    with pytest.raises(PyociError) as raised:
        verify(layout)
    assert str(raised.value) == (
        f"{layout / 'index.json'}: digest {first['digest']}\\n: encoded part is not 64 lower-case hex digits"
    )


def buildx_layout(directory: Path, arch: str) -> str:
    """hello-ARCH as BuildKit exports it: an index of the image and its provenance attestation manifest."""
    image_root = single_layout(directory)  # tagged 1.0: a manifest
    image = entry(image_root)
    statement = b'{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2"}'
    statement_digest = put(directory, statement)
    config = {
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [statement_digest]},
    }
    config_raw = json.dumps(config).encode()
    attestation = {
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "config": {"mediaType": IMAGE_CONFIG, "digest": put(directory, config_raw), "size": len(config_raw)},
        "layers": [
            {
                "mediaType": IN_TOTO,
                "digest": statement_digest,
                "size": len(statement),
                "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
            }
        ],
    }
    attestation_raw = json.dumps(attestation).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": IMAGE_INDEX,
        "manifests": [
            {
                **{key: image[key] for key in ("mediaType", "digest", "size")},
                "platform": {"os": "linux", "architecture": arch},
            },
            {
                "mediaType": IMAGE_MANIFEST,
                "digest": put(directory, attestation_raw),
                "size": len(attestation_raw),
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {
                    DOCKER_REFERENCE_TYPE: ATTESTATION_MANIFEST,
                    "vnd.docker.reference.digest": image["digest"],
                },
            },
        ],
    }
    index_raw = json.dumps(index).encode()
    index_entry = {"mediaType": IMAGE_INDEX, "digest": put(directory, index_raw), "size": len(index_raw)}
    index_entry["annotations"] = {REF_NAME: "1.0"}
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [index_entry]}))
    return str(image["digest"])


def test_buildx_attestations_are_kept_by_copy_and_are_not_platforms(tmp_path: Path) -> None:
    amd64 = tmp_path / "amd64"
    image = buildx_layout(amd64, "amd64")
    report = verify(amd64)
    assert report.ok and UNKNOWN_LAYER_NOTE in report.notes, report
    (inspected,) = inspect(f"oci:{amd64}:1.0").images
    assert [str(p.platform) for p in inspected.platforms] == ["linux/amd64"]

    copy(f"oci:{amd64}:1.0", f"oci:{tmp_path / 'whole'}:c")
    assert blob(tmp_path / "whole", entry(tmp_path / "whole")["digest"]) == blob(amd64, entry(amd64)["digest"])
    one = copy(f"oci:{amd64}:1.0", f"oci:{tmp_path / 'one'}:c", platforms=["linux/amd64"])
    assert str(one.digest) == image

    arm64 = tmp_path / "arm64"
    buildx_layout(arm64, "arm64")
    merged = merge([f"oci:{amd64}:1.0", f"oci:{arm64}:1.0"], f"oci:{tmp_path / 'merged'}:m")
    assert [d.platform for d in merged.manifests] == [Platform("linux", "amd64"), Platform("linux", "arm64")]
    assert verify(tmp_path / "merged").ok


def test_an_index_entry_of_another_media_type_is_ignored_by_verify(tmp_path: Path) -> None:
    layout = single_layout(tmp_path / "layout")
    listed = entry(layout)
    extra = b"not a manifest"
    other = {"mediaType": "application/vnd.example.thing", "digest": put(layout, extra), "size": len(extra)}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [listed, other]}))
    report = verify(layout)
    assert report.ok and any("image-index.md requires" in note for note in report.notes), report
    blob_path(layout, other["digest"]).write_bytes(b"not a manifesT")
    assert [p.rpartition(": ")[2] for p in verify(layout).problems] == [
        f"expected {other['digest']}, got sha256:{hashlib.sha256(b'not a manifesT').hexdigest()}"
    ]


def test_a_manifest_of_another_schema_version_or_null_fields_is_refused(tmp_path: Path) -> None:
    layout = single_layout(tmp_path / "layout")
    where = ImageLayout.open(layout).name
    manifest = document(layout)
    for change, message in (
        ({"schemaVersion": 1}, "'schemaVersion' must be the integer 2"),
        ({"mediaType": None}, "'mediaType' must be a media type string (type/subtype)"),
        ({"subject": None}, "subject: descriptor is not a JSON object"),
        ({"config": {**manifest["config"], "urls": None}}, "'urls' is null (leave it out instead)"),
    ):
        digest = retag(layout, {**manifest, **change}, "1.0")
        with pytest.raises(PyociError, match=f"^{where}: manifest {digest}: .*{re.escape(message)}$"):
            copy(f"oci:{layout}:1.0", f"oci:{tmp_path / 'copy'}:c")
        assert not (tmp_path / "copy").exists()
    assert Manifest.parse(json.dumps(manifest).encode(), "m").layers
    assert Index.parse(b'{"schemaVersion":2,"manifests":[]}', "i").manifests == ()
