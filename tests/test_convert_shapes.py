"""Archive shapes built in the test: hard links before their target, duplicate tags, several images."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from conftest import validate_layout
from support.archives import config_for, docker_archive, layer_tar

from pyoci import ArchiveError, convert


def archive_with_hardlink_first(tmp_path: Path) -> Path:
    layer = layer_tar({"big.bin": bytes(range(256)) * 64})
    config = config_for([layer, layer])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        link = tarfile.TarInfo("b/layer.tar")
        link.type = tarfile.LNKTYPE
        link.linkname = "./a/layer.tar"
        tar.addfile(link)
        info = tarfile.TarInfo("./a/layer.tar")
        info.size = len(layer)
        tar.addfile(info, io.BytesIO(layer))
        for name, data in (
            ("c.json", config),
            (
                "manifest.json",
                json.dumps(
                    [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}]
                ).encode(),
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "hl.tar"
    path.write_bytes(buf.getvalue())
    return path


def test_hard_link_before_target(tmp_path: Path) -> None:
    result = convert(str(archive_with_hardlink_first(tmp_path)), str(tmp_path / "o"))
    layers = result.images[0].layers
    assert len(layers) == 2 and layers[0] == layers[1]
    assert (
        str(result.images[0].diff_ids[0])
        == "sha256:" + hashlib.sha256(layer_tar({"big.bin": bytes(range(256)) * 64})).hexdigest()
    )
    validate_layout(tmp_path / "o")


def two_images_same_tag(tmp_path: Path) -> Path:
    layers = [layer_tar({"f": b"1" * 5000}), layer_tar({"f": b"2" * 5000})]
    members: list[tuple[str, bytes]] = []
    entries = []
    for i, layer in enumerate(layers):
        config = config_for([layer], arch="amd64")
        members += [(f"l{i}.tar", layer), (f"c{i}.json", config)]
        entries.append({"Config": f"c{i}.json", "RepoTags": [f"example.com/app{i}:1.0"], "Layers": [f"l{i}.tar"]})
    members.append(("manifest.json", json.dumps(entries).encode()))
    path = tmp_path / "two.tar"
    path.write_bytes(docker_archive([(name, data, None) for name, data in members]))
    return path


def test_all_with_clashing_tags_is_an_error(tmp_path: Path) -> None:
    path = two_images_same_tag(tmp_path)
    with pytest.raises(
        ArchiveError,
        match=r"images @0 \(example.com/app0:1.0\) and @1 \(example.com/app1:1.0\) would both be tagged '1.0'",
    ):
        convert(str(path), str(tmp_path / "o"), all_images=True)
    assert not (tmp_path / "o").exists()
    by_name = convert(f"docker-archive:{path}:example.com/app1:1.0", f"oci:{tmp_path / 'one'}:v")
    assert by_name.images[0].source.position == 1
    with pytest.raises(ArchiveError, match="no image named example.com/app9:1.0"):
        convert(f"docker-archive:{path}:example.com/app9:1.0", str(tmp_path / "x"))
    with pytest.raises(ArchiveError, match="no image @5"):
        convert(f"docker-archive:{path}:@5", str(tmp_path / "x"))
