"""``pyoci convert`` on archives made by real tools, checked against skopeo and umoci as oracles."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES, need_tool, run_pyoci, validate_layout
from support.layouts import blob, read_json, snapshot

from pyoci import Compression, LayerOptions, convert
from pyoci.mediatype import LAYER, LAYER_GZIP, LAYER_ZSTD

HELLO = FIXTURES / "hello-amd64.tar"
# rootfs.diff_ids and config digest of hello-amd64.tar (fixtures/README.md)
HELLO_DIFF_IDS = [
    "sha256:725d25af06dcbe703996e363adf29819bc09d6fed6aa9d41a1bc89674ad4d026",
    "sha256:a3f46b09c1526b80e36f7b326273ca370eb4347fe708c9957f20484295560299",
]
HELLO_CONFIG = "sha256:dce598df6f941326452ba93cfe4aa6e3d13da38d8d39c936bfcb36de1c548e18"


def archive_config(path: Path) -> bytes:
    with tarfile.open(path) as tar:
        f = tar.extractfile(f"{HELLO_CONFIG.split(':')[1]}.json")
        assert f is not None
        return f.read()


@pytest.mark.parametrize("source", ["hello-amd64.tar", "hello-amd64.tar.gz", "hello-amd64.tar.zst"])
def test_outer_compression_detected_by_magic(tmp_path: Path, source: str) -> None:
    # copy under a name without a telling extension: detection must not use the file name
    src = tmp_path / "archive.bin"
    src.write_bytes((FIXTURES / source).read_bytes())
    result = convert(str(src), f"oci:{tmp_path / 'o'}:1.0")
    image = result.images[0]
    assert [str(d) for d in image.diff_ids] == HELLO_DIFF_IDS
    assert str(image.config.digest) == HELLO_CONFIG
    assert image.tags == ("1.0",)
    assert [layer.media_type for layer in image.layers] == [LAYER_GZIP, LAYER_GZIP]
    validate_layout(tmp_path / "o")


def test_index_entry_and_config_bytes(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = convert(str(HELLO), str(out))
    index = read_json(out / "index.json")
    assert index["schemaVersion"] == 2
    assert index["manifests"] == [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": str(result.images[0].manifest.digest),
            "size": result.images[0].manifest.size,
            "annotations": {
                "io.containerd.image.name": "example.com/hello:1.0",
                "org.opencontainers.image.ref.name": "1.0",
            },
            "platform": {"architecture": "amd64", "os": "linux"},
        }
    ]
    assert blob(out, HELLO_CONFIG) == archive_config(HELLO)
    validate_layout(out)


def test_variant_in_platform(tmp_path: Path) -> None:
    convert(str(FIXTURES / "hello-armv7.tar"), str(tmp_path / "o"))
    assert read_json(tmp_path / "o/index.json")["manifests"][0]["platform"] == {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
    }


@pytest.mark.parametrize(
    ("codec", "media_type"), [(Compression.GZIP, LAYER_GZIP), (Compression.ZSTD, LAYER_ZSTD), (Compression.NONE, LAYER)]
)
def test_deterministic_across_runs_and_threads(tmp_path: Path, codec: Compression, media_type: str) -> None:
    outs = []
    for i, threads in enumerate([1, 2, 4, 1]):
        out = tmp_path / f"o{i}"
        result = convert(str(HELLO), str(out), options=LayerOptions(codec, threads=threads))
        assert {layer.media_type for layer in result.images[0].layers} == {media_type}
        outs.append(snapshot(out))
    assert all(o == outs[0] for o in outs)
    validate_layout(tmp_path / "o0")


def test_uncompressed_layers_equal_archive_members(tmp_path: Path) -> None:
    result = convert(str(HELLO), str(tmp_path / "o"), options=LayerOptions(Compression.NONE))
    assert [str(layer.digest) for layer in result.images[0].layers] == HELLO_DIFF_IDS


def test_level_is_checked() -> None:
    from pyoci import FormatError

    with pytest.raises(FormatError, match="gzip levels are 1..12"):
        LayerOptions(Compression.GZIP, level=13)
    with pytest.raises(FormatError):
        LayerOptions(Compression.NONE, level=1)


def test_existing_layout_keeps_other_images_and_replaces_tag(tmp_path: Path) -> None:
    out = tmp_path / "o"
    convert(str(FIXTURES / "hello-arm64.tar"), f"oci:{out}:arm")
    first = convert(str(HELLO), f"oci:{out}:x")
    convert(str(HELLO), f"oci:{out}:x", options=LayerOptions(Compression.ZSTD))
    entries = read_json(out / "index.json")["manifests"]
    assert [e["annotations"]["org.opencontainers.image.ref.name"] for e in entries] == ["arm", "x"]
    assert entries[1]["digest"] != str(first.images[0].manifest.digest)
    validate_layout(out)


def test_tag_option_and_conflict(tmp_path: Path) -> None:
    out = tmp_path / "o"
    proc = run_pyoci("convert", "--tag", "v2", str(HELLO), str(out))
    assert read_json(out / "index.json")["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v2"}
    assert proc.stdout.decode().startswith("sha256:")
    bad = run_pyoci("convert", "--tag", "v2", str(HELLO), f"oci:{out}:v3", check=False)
    assert bad.returncode == 1 and "tag given twice" in bad.stderr.decode()


def test_json_output(tmp_path: Path) -> None:
    proc = run_pyoci("convert", "--json", str(HELLO), str(tmp_path / "o"))
    doc = json.loads(proc.stdout)
    assert doc["images"][0]["diff_ids"] == HELLO_DIFF_IDS
    assert doc["images"][0]["config"]["digest"] == HELLO_CONFIG
    assert doc["images"][0]["tags"] == ["1.0"]


def test_oci_archive_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    convert(str(HELLO), f"oci-archive:{a}:1.0")
    convert(str(HELLO), f"oci-archive:{b}:1.0", options=LayerOptions(threads=1))
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert names[:3] == ["blobs", "blobs/sha256", names[2]] and "index.json" in names and "oci-layout" in names
    assert not list(tmp_path.glob(".pyoci-tmp-*"))


def test_concurrent_writers_keep_both_tags(tmp_path: Path) -> None:
    out = tmp_path / "o"
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pyoci", "convert", str(FIXTURES / f"hello-{arch}.tar"), f"oci:{out}:{arch}-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(3)
        for arch in ("amd64", "arm64", "386")
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    tags = {e["annotations"]["org.opencontainers.image.ref.name"] for e in read_json(out / "index.json")["manifests"]}
    assert tags == {f"{arch}-{i}" for i in range(3) for arch in ("amd64", "arm64", "386")}
    validate_layout(out)


# --- real tools as oracles -------------------------------------------------------------------------


def test_skopeo_agrees(tmp_path: Path) -> None:
    need_tool("skopeo")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    result = convert(str(HELLO), f"oci:{ours}:1.0")
    subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{HELLO}", f"oci:{theirs}:1.0"], check=True)
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{ours}:1.0"], check=True, capture_output=True).stdout
    assert raw == blob(ours, str(result.images[0].manifest.digest))
    ours_config = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--config", "--raw", f"oci:{ours}:1.0"], check=True, capture_output=True
        ).stdout
    )
    theirs_config = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--config", "--raw", f"oci:{theirs}:1.0"], check=True, capture_output=True
        ).stdout
    )
    # skopeo re-serialises the config: compare its content, not its digest
    assert ours_config == theirs_config
    assert ours_config["rootfs"]["diff_ids"] == HELLO_DIFF_IDS
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{ours}:1.0"], check=True, capture_output=True).stdout)
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert len(info["Layers"]) == 2


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.NONE])
def test_umoci_unpacks(tmp_path: Path, codec: Compression) -> None:
    need_tool("umoci")
    out = tmp_path / "o"
    convert(str(HELLO), f"oci:{out}:1.0", options=LayerOptions(codec))
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{out}:1.0", str(bundle)], check=True, capture_output=True
    )
    assert (bundle / "rootfs/app/hello.txt").read_text().strip().endswith("amd64") or (
        bundle / "rootfs/app/hello.txt"
    ).exists()
    assert (bundle / "rootfs/etc/hello/hello.conf").is_file()
    assert (bundle / "rootfs/app/hello").is_symlink()


def test_skopeo_reads_zstd_and_pipe_conversion(tmp_path: Path) -> None:
    need_tool("skopeo")
    out = tmp_path / "o"
    run_pyoci(
        "convert", "--compression", "zstd", "-", f"oci:{out}:z", input=(FIXTURES / "hello-amd64.tar.zst").read_bytes()
    )
    manifest = json.loads(
        subprocess.run(["skopeo", "inspect", "--raw", f"oci:{out}:z"], check=True, capture_output=True).stdout
    )
    assert [layer["mediaType"] for layer in manifest["layers"]] == [LAYER_ZSTD, LAYER_ZSTD]
    validate_layout(out)
