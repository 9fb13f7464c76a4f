"""``pyoci convert`` on every shape in ../shared/samples (each a fault some tool had)."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from conftest import run_pyoci, validate_layout
from support.layouts import blob, document, read_json, snapshot

from pyoci import ArchiveError, Compression, DiffIDMismatchError, LayerOptions, convert
from pyoci.mediatype import IMAGE_CONFIG, IMAGE_MANIFEST, LAYER_GZIP


def archive_member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_symlink_duplicate_before_target(sample, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = convert(str(sample("B01")), str(out))
    manifest = document(out)
    layers = manifest["layers"]
    assert len(layers) == 3
    assert layers[1] == layers[2]
    assert layers[0] != layers[1]
    config = json.loads(blob(out, manifest["config"]["digest"]))
    assert [str(d) for d in result.images[0].diff_ids] == config["rootfs"]["diff_ids"]
    blobs = sorted(p.name for p in (out / "blobs/sha256").iterdir())
    assert len(blobs) == 4  # 2 distinct layers, config, manifest
    validate_layout(out)


def test_repeated_diff_id_keeps_positions(sample, tmp_path: Path) -> None:
    out = tmp_path / "o"
    convert(str(sample("B02")), str(out))
    layers = document(out)["layers"]
    assert len(layers) == 4
    assert layers[1] == layers[3]
    assert len({layer["digest"] for layer in layers}) == 3
    assert len(list((out / "blobs/sha256").iterdir())) == 5
    validate_layout(out)


def test_nix_manifest_last_from_file_gzip_and_stdin(sample, tmp_path: Path) -> None:
    plain, gz = sample("B04-nix-stream-manifest-last.tar"), sample("B04-nix-stream-manifest-last.tar.gz")
    digests = set()
    for i, args in enumerate([[str(plain)], [str(gz)], ["-"]]):
        out = tmp_path / f"o{i}"
        stdin = gz.read_bytes() if args == ["-"] else None
        proc = run_pyoci("convert", *args, f"oci:{out}", input=stdin)
        digests.add(proc.stdout.decode().strip())
        layers = document(out)["layers"]
        assert len(layers) == 3
        validate_layout(out)
    assert len(digests) == 1
    # absolute member names inside the layers are content: they pass through untouched
    layer_tar = archive_member(plain, "c8ae1671adfccd6f3fe5c0da2baa0ff752414ec23f0fb0efb4f8ef9531575ade/layer.tar")
    out_layer = document(tmp_path / "o0")["layers"][0]
    assert gzip.decompress(blob(tmp_path / "o0", out_layer["digest"])) == layer_tar


def test_two_images_need_a_selector(sample, tmp_path: Path) -> None:
    path = sample("B05")
    with pytest.raises(ArchiveError, match=r"@0 \(example.com/b05-a:1\); @1 \(untagged\)"):
        convert(str(path), str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    a = convert(f"docker-archive:{path}:@0", str(tmp_path / "a")).images[0]
    b = convert(f"docker-archive:{path}:@1", str(tmp_path / "b")).images[0]
    by_tag = convert(f"docker-archive:{path}:example.com/b05-a:1", str(tmp_path / "t")).images[0]
    assert by_tag.manifest.digest == a.manifest.digest
    assert a.tags == ("1",) and b.tags == ("latest",)
    both = convert(str(path), str(tmp_path / "all"), all_images=True)
    assert [i.manifest.digest for i in both.images] == [a.manifest.digest, b.manifest.digest]
    assert a.layers[0] == b.layers[0]  # shared base layer: one blob
    assert len(list((tmp_path / "all/blobs/sha256").iterdir())) == 7  # 3 layers, 2 configs, 2 manifests
    validate_layout(tmp_path / "all")


def test_dot_slash_prefix(sample, tmp_path: Path) -> None:
    result = convert(str(sample("B06")), str(tmp_path / "o"))
    assert len(result.images[0].layers) == 2
    validate_layout(tmp_path / "o")


def test_gzip_layers_kept_byte_for_byte(sample, tmp_path: Path) -> None:
    path = sample("B08")
    result = convert(str(path), str(tmp_path / "o"))
    layers = result.images[0].layers
    assert [str(layer.digest) for layer in layers] == [
        "sha256:6756b700157de8803fc3b053c69e089e69c42bcc69069d8c18d99a8a19730813",
        "sha256:c1e240ac75447aa6152a043ce657d709d010e95b2eeb60bf58a6474ccda9a883",
    ]
    assert {layer.media_type for layer in layers} == {LAYER_GZIP}
    validate_layout(tmp_path / "o")
    # asking for zstd re-compresses; the diff_ids stay
    z = convert(str(path), str(tmp_path / "z"), options=LayerOptions(Compression.ZSTD))
    assert z.images[0].diff_ids == result.images[0].diff_ids
    assert {layer.media_type for layer in z.images[0].layers} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    validate_layout(tmp_path / "z")


@pytest.mark.parametrize("name", ["B09a", "B09b"])
def test_docker25_hybrid_uses_manifest_json(sample, tmp_path: Path, name: str) -> None:
    result = convert(str(sample(name)), str(tmp_path / "o"))
    image = result.images[0]
    assert len(image.layers) == 2
    assert str(image.config.digest) == "sha256:c4eb7293c5c832a57af118271c0015f5fb8be9ad8289d3153d4177a633334206"
    assert image.tags == ("latest",)
    entry = read_json(tmp_path / "o/index.json")["manifests"][0]
    assert entry["annotations"] == {
        "io.containerd.image.name": "docker.io/library/b09:latest",
        "org.opencontainers.image.ref.name": "latest",
    }
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    validate_layout(tmp_path / "o")


def test_containerd_store_nested_index(sample, tmp_path: Path) -> None:
    result = convert(str(sample("B10")), str(tmp_path / "o"))
    assert len(result.images[0].layers) == 2
    validate_layout(tmp_path / "o")


def test_zstd_layer_in_archive(sample, tmp_path: Path) -> None:
    result = convert(str(sample("B11")), str(tmp_path / "o"))
    assert all(layer.media_type == LAYER_GZIP for layer in result.images[0].layers)
    validate_layout(tmp_path / "o")
    kept = convert(str(sample("B11")), str(tmp_path / "z"), options=LayerOptions(Compression.ZSTD))
    src = sample("B11")
    for layer in kept.images[0].layers:
        # kept byte for byte: the digest is that of the blob inside the archive
        assert (
            hashlib.sha256(archive_member(src, f"blobs/sha256/{layer.digest.encoded}")).hexdigest()
            == layer.digest.encoded
        )


def test_two_tags_one_image(sample, tmp_path: Path) -> None:
    convert(str(sample("B16")), str(tmp_path / "o"))
    entries = read_json(tmp_path / "o/index.json")["manifests"]
    assert [e["annotations"] for e in entries] == [
        {"io.containerd.image.name": "example.com/b16:1.0", "org.opencontainers.image.ref.name": "1.0"},
        {"io.containerd.image.name": "example.com/b16:latest", "org.opencontainers.image.ref.name": "latest"},
    ]
    assert entries[0]["digest"] == entries[1]["digest"]
    validate_layout(tmp_path / "o")


def test_empty_layer_kept(sample, tmp_path: Path) -> None:
    result = convert(str(sample("B19a")), str(tmp_path / "o"))
    assert len(result.images[0].layers) == 2
    assert (
        str(result.images[0].diff_ids[1]) == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    )
    validate_layout(tmp_path / "o")


def test_zero_layers(sample, tmp_path: Path) -> None:
    result = convert(str(sample("B19b")), str(tmp_path / "o"))
    manifest = document(tmp_path / "o")
    assert manifest["layers"] == []
    assert manifest["config"]["mediaType"] == IMAGE_CONFIG
    assert manifest["mediaType"] == IMAGE_MANIFEST
    assert result.images[0].tags == ("b",)
    validate_layout(tmp_path / "o")


def test_diff_id_mismatch_writes_nothing(sample, tmp_path: Path) -> None:
    out = tmp_path / "o"
    with pytest.raises(
        DiffIDMismatchError, match=r"layer 1 .*config says sha256:7d2bee3c.*layer data is sha256:7b1c279d"
    ):
        convert(str(sample("B22a")), str(out))
    assert not out.exists()


def test_missing_layer_file(sample, tmp_path: Path) -> None:
    proc = run_pyoci("convert", str(sample("B22b")), str(tmp_path / "o"), check=False)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "is missing from the archive" in err and "B22b" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_failure_leaves_existing_layout_unchanged(sample, tmp_path: Path) -> None:
    out = tmp_path / "o"
    convert(str(sample("B16")), str(out))
    before = snapshot(out)
    for bad in ("B22a", "B22b"):
        with pytest.raises(ArchiveError):
            convert(str(sample(bad)), str(out))
    assert snapshot(out) == before


def test_config_bytes_verbatim(sample, tmp_path: Path) -> None:
    path = sample("B01")
    result = convert(str(path), str(tmp_path / "o"))
    config_name = f"{result.images[0].config.digest.encoded}.json"
    assert archive_member(path, config_name) == blob(tmp_path / "o", str(result.images[0].config.digest))


def test_stdin_equals_file(sample, tmp_path: Path) -> None:
    path = sample("B01")
    a = run_pyoci("convert", str(path), str(tmp_path / "a")).stdout
    b = run_pyoci("convert", "-", str(tmp_path / "b"), input=path.read_bytes()).stdout
    assert a == b
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
