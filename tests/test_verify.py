"""``pyoci verify`` finds and reports every kind of damage, each in one message."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from conftest import FIXTURES, SCHEMAS, need_shared, run_pyoci
from support.layouts import blob, blob_path, document, entry, read_json

from pyoci import Compression, LayerOptions, LayoutError, convert, verify
from pyoci.errors import TagError


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    out = tmp_path / "o"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{out}:1.0")
    return out


def test_sound_layout(layout: Path) -> None:
    need_shared()
    report = verify(layout, schemas_dir=SCHEMAS)
    assert report.ok and report.problems == []
    assert report.blobs_checked == 4
    proc = run_pyoci("verify", "--schemas", str(SCHEMAS), f"oci:{layout}:1.0")
    assert proc.returncode == 0


def test_missing_layer_blob(layout: Path) -> None:
    layer = document(layout)["layers"][1]["digest"]
    blob_path(layout, layer).unlink()
    report = verify(layout)
    assert len(report.problems) == 1
    assert f"blob {layer} is missing" in report.problems[0]


def test_a_layer_that_cannot_be_read_is_a_problem(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyoci.streams import VerifyingReader

    layer = document(layout)["layers"][0]["digest"]
    read = VerifyingReader.read

    def failing(self: VerifyingReader, size: int = -1) -> bytes:
        if str(self._expected) == layer:
            raise OSError(5, "Input/output error")
        return read(self, size)

    monkeypatch.setattr(VerifyingReader, "read", failing)
    report = verify(layout)
    manifest = entry(layout, "1.0")["digest"]
    assert report.problems == [
        f"index.json (1.0) -> manifest {manifest} -> layer 0 {layer}: cannot read: Input/output error"
    ]


def test_corrupt_layer_and_config(layout: Path) -> None:
    manifest = document(layout)
    layer = manifest["layers"][0]["digest"]
    path = blob_path(layout, layer)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    config = blob_path(layout, manifest["config"]["digest"])
    config.write_bytes(config.read_bytes() + b" ")
    report = verify(layout)
    assert any(f"layer 0 {layer}" in p and "digest: expected" in p for p in report.problems), report.problems
    assert any("config" in p and "size: expected" in p for p in report.problems), report.problems
    proc = run_pyoci("verify", str(layout), check=False)
    assert proc.returncode == 1 and proc.stdout.decode().count("problem:") == len(report.problems)


def test_media_type_not_matching_bytes(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{out}:1.0", options=LayerOptions(Compression.NONE))
    # rewrite the manifest so a plain tar layer claims gzip; re-point index.json at the new manifest
    manifest = json.loads(blob(out, str(result.images[0].manifest.digest)))
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    _replace_manifest(out, manifest)
    report = verify(out)
    assert any("media type says gzip but the bytes are none" in p for p in report.problems), report.problems


def test_diff_id_mismatch(layout: Path) -> None:
    manifest = document(layout)
    # swap in a valid gzip blob of other content under the first layer's position
    other = gzip.compress(b"\0" * 1024, mtime=0)
    digest = "sha256:" + hashlib.sha256(other).hexdigest()
    blob_path(layout, digest).write_bytes(other)
    manifest["layers"][0].update(digest=digest, size=len(other))
    _replace_manifest(layout, manifest)
    report = verify(layout)
    assert any("diff_id mismatch: config says sha256:725d25af" in p for p in report.problems), report.problems


def test_schema_failure_and_leftover_temp(layout: Path) -> None:
    need_shared()
    manifest = document(layout)
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    config["config"]["Env"] = None  # read as absent (as Go reads it), refused by the schema
    raw = json.dumps(config).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    blob_path(layout, digest).write_bytes(raw)
    manifest["config"].update(digest=digest, size=len(raw))
    _replace_manifest(layout, manifest)
    (layout / ".pyoci-tmp-1-abc").write_bytes(b"partial")
    report = verify(layout, schemas_dir=SCHEMAS)
    schema = [p for p in report.problems if "schema config-schema.json" in p]
    assert len(schema) == 1 and schema[0].endswith("config/Env: None is not of type 'array'"), report.problems
    assert any("leftover temporary file" in p for p in report.problems)


def test_a_manifest_of_another_schema_version_is_reported(layout: Path) -> None:
    manifest = document(layout)
    manifest["schemaVersion"] = 3
    _replace_manifest(layout, manifest)
    report = verify(layout)
    assert len(report.problems) == 1 and report.problems[0].endswith(": 'schemaVersion' must be the integer 2")


def test_missing_tag_and_not_a_layout(layout: Path, tmp_path: Path) -> None:
    with pytest.raises(TagError, match="no image tagged 'nope'"):
        verify(f"oci:{layout}:nope")
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        verify(tmp_path)
    proc = run_pyoci("verify", str(tmp_path / "absent"), check=False)
    assert proc.returncode == 1 and proc.stderr.decode().startswith("pyoci: error: ")
    proc = run_pyoci("verify", "docker://127.0.0.1:5000/me/app:1.0", check=False)
    assert (proc.returncode, proc.stderr.decode()) == (
        1,
        "pyoci: error: docker://127.0.0.1:5000/me/app:1.0: verify reads oci:, static: references, not docker://\n",
    )


def _replace_manifest(layout: Path, manifest: dict) -> None:
    raw = json.dumps(manifest).encode()
    digest = hashlib.sha256(raw).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(raw)
    index = read_json(layout / "index.json")
    index["manifests"][0].update(digest=f"sha256:{digest}", size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))


def test_a_huge_index_json_is_checked_in_bounded_time(layout: Path) -> None:
    import time

    from pyoci.commands.verify import MAX_SCHEMA_ENTRIES

    need_shared()
    index = json.loads((layout / "index.json").read_bytes())
    entry = index["manifests"][0]
    count = MAX_SCHEMA_ENTRIES + 2000
    index["manifests"] = [
        {**entry, "annotations": {"org.opencontainers.image.ref.name": f"t{i}"}} for i in range(count)
    ]
    (layout / "index.json").write_text(json.dumps(index))
    started = time.monotonic()
    report = verify(layout, schemas_dir=SCHEMAS)
    assert report.problems == [] and time.monotonic() - started < 60
    assert any(
        f"holds {count} entries; the schema check covered the first {MAX_SCHEMA_ENTRIES}" in n for n in report.notes
    )
