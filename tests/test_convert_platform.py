"""``pyoci convert --platform``: the variant a Nix-style config lacks goes into the index.json entry only."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from conftest import run_pyoci, validate_layout
from support.archives import config_for, docker_archive, layer_tar
from support.layouts import read_json, snapshot

from pyoci import FormatError, convert, merge
from pyoci.mediatype import IMAGE_INDEX

CONTAINERD_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"


def arm_archive(path: Path, tags: list[str]) -> str:
    """A docker-archive whose config says ``arm`` with no variant, as Nix writes it; returns the config digest."""
    layer = layer_tar({"bin/app": b"arm binary\n"})
    config = config_for([layer], arch="arm")
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": tags, "Layers": ["layer.tar"]}]).encode()
    path.write_bytes(
        docker_archive([("layer.tar", layer, None), (config_name, config, None), ("manifest.json", manifest, None)])
    )
    return "sha256:" + hashlib.sha256(config).hexdigest()


def test_variant_goes_into_every_entry_and_nothing_else_changes(tmp_path: Path) -> None:
    archive = tmp_path / "nix.tar"
    config_digest = arm_archive(archive, ["example.com/app:1", "example.com/app:latest"])
    plain = convert(str(archive), f"oci:{tmp_path / 'plain'}")
    out = tmp_path / "out"
    proc = run_pyoci("convert", "--platform", "linux/arm/v7", str(archive), str(out))
    entries = read_json(out / "index.json")["manifests"]
    assert [e["annotations"] for e in entries] == [
        {CONTAINERD_NAME: "example.com/app:1", REF_NAME: "1"},
        {CONTAINERD_NAME: "example.com/app:latest", REF_NAME: "latest"},
    ]
    assert [e["platform"] for e in entries] == [{"architecture": "arm", "os": "linux", "variant": "v7"}] * 2
    # config bytes (the image ID) and manifest are those of a plain convert
    assert {e["digest"] for e in entries} == {str(plain.images[0].manifest.digest)}
    assert proc.stdout.decode() == entries[0]["digest"] + "\n"
    assert str(plain.images[0].config.digest) == config_digest
    assert snapshot(out / "blobs") == snapshot(tmp_path / "plain" / "blobs")
    validate_layout(out)
    # merge reads the entry's platform: the variant reaches the image index
    result = merge([f"oci:{out}:1"], f"oci:{tmp_path / 'multi'}:m")
    assert result.manifests[0].platform is not None and result.manifests[0].platform.variant == "v7"
    index_entry = read_json(tmp_path / "multi" / "index.json")["manifests"][0]
    assert index_entry["mediaType"] == IMAGE_INDEX


def test_library_result_and_oci_archive(tmp_path: Path) -> None:
    archive = tmp_path / "nix.tar"
    arm_archive(archive, ["example.com/app:1"])
    result = convert(str(archive), f"oci-archive:{tmp_path / 'image.tar'}:v7", platform="linux/arm/v7")
    [image] = result.images
    assert image.manifest.platform is not None and str(image.manifest.platform) == "linux/arm/v7"
    assert image.tags == ("v7",)
    with tarfile.open(tmp_path / "image.tar") as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["platform"]["variant"] == "v7"
    assert index["manifests"][0]["annotations"] == {REF_NAME: "v7"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", "linux/amd64"], "--platform linux/amd64 contradicts the image config's linux/arm"),
        (["--platform", "linux"], "platform 'linux': expected os/architecture"),
        (["--platform", "linux/arm/v7", "--all"], "--platform sets the platform of one image; drop --all"),
    ],
)
def test_refused_override_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    archive = tmp_path / "nix.tar"
    arm_archive(archive, ["example.com/app:1"])
    existing = tmp_path / "existing"
    convert(str(archive), f"oci:{existing}:keep")
    before = snapshot(existing)
    for dest in (tmp_path / "new", existing):
        proc = run_pyoci("convert", *args, str(archive), str(dest), check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err.startswith("pyoci: error: ") and err.count("\n") == 1, err
        assert message in err, err
    assert not (tmp_path / "new").exists()
    assert snapshot(existing) == before


def test_platform_rule_is_shared(tmp_path: Path) -> None:
    archive = tmp_path / "nix.tar"
    arm_archive(archive, ["example.com/app:1"])
    with pytest.raises(FormatError, match="contradicts"):
        convert(str(archive), f"oci:{tmp_path / 'o'}", platform="linux/arm64")
    assert not (tmp_path / "o").exists()
