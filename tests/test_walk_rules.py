"""verify, inspect, merge and push agree on the walk's rules (depth limit, non-distributable layers)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import FIXTURES, SCHEMAS, need_shared

from pyoci import FormatError, convert, inspect, merge, push, verify
from pyoci.descriptor import REF_NAME, Descriptor
from pyoci.digest import Digest
from pyoci.jsonio import dump_json
from pyoci.layout.store import ImageLayout
from pyoci.manifest import Index, Manifest
from pyoci.mediatype import IMAGE_CONFIG, IMAGE_INDEX
from pyoci.walk import MAX_INDEX_DEPTH


def nested_layout(tmp_path: Path, levels: int) -> Path:
    """The hello-amd64 image inside ``levels`` nested image indexes, tagged ``deep``."""
    out = tmp_path / f"deep{levels}"
    image = convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{out}:base").images[0].manifest
    layout = ImageLayout.open(out)
    top = dataclasses.replace(image, annotations={})
    for _ in range(levels):
        index = Index.build([top])
        top = layout.put_blob(index.raw, IMAGE_INDEX)
    layout.update_index(lambda current: [*current, top.with_annotations({REF_NAME: "deep"})])
    return out


def test_eight_nested_indexes_pass_everywhere(tmp_path: Path) -> None:
    need_shared()
    out = nested_layout(tmp_path, MAX_INDEX_DEPTH)
    assert verify(f"oci:{out}:deep", schemas_dir=SCHEMAS).ok
    [image] = inspect(f"oci:{out}:deep").images
    assert [str(p.platform) for p in image.platforms] == ["linux/amd64"]
    result = push(f"oci:{out}:deep", f"static:{tmp_path / 'tree'}:deep:1")
    assert result.destinations[0].manifests == MAX_INDEX_DEPTH + 1
    assert merge([f"oci:{out}:deep"], f"oci:{tmp_path / 'm'}:1").manifests[0].platform is not None


def test_nine_nested_indexes_are_refused_everywhere(tmp_path: Path) -> None:
    out = nested_layout(tmp_path, MAX_INDEX_DEPTH + 1)
    message = "image indexes nested more than 8 deep"
    report = verify(f"oci:{out}:deep")
    assert any(message in p for p in report.problems), report.problems
    for call in (
        lambda: inspect(f"oci:{out}:deep"),
        lambda: push(f"oci:{out}:deep", f"static:{tmp_path / 'tree'}:deep:1"),
        lambda: merge([f"oci:{out}:deep"], f"oci:{tmp_path / 'm'}:1"),
    ):
        with pytest.raises(FormatError, match=message):
            call()
    assert not (tmp_path / "m").exists()


def test_non_distributable_layers_absent_from_the_layout(tmp_path: Path) -> None:
    """A layer with urls whose blob is absent: verify notes it, push and merge skip it, all exit 0."""
    need_shared()
    out = tmp_path / "foreign"
    image = convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{out}:base").images[0]
    layout = ImageLayout.open(out)
    manifest = Manifest.parse(layout.read_blob(image.manifest), "m")
    absent = Descriptor(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        Digest.of_bytes(b"not stored here"),
        15,
        urls=("https://example.com/base-layer.tar.gz",),
    )
    config = json.loads(layout.read_blob(manifest.config))
    config["rootfs"]["diff_ids"].append(str(Digest.of_bytes(b"the uncompressed foreign layer")))
    new_config = layout.put_blob(dump_json(config), IMAGE_CONFIG)
    built = Manifest.build(new_config, [*manifest.layers, absent])
    top = layout.put_blob(built.raw, built.media_type)
    layout.update_index(lambda current: [*current, top.with_annotations({REF_NAME: "foreign"})])
    report = verify(f"oci:{out}:foreign", schemas_dir=SCHEMAS)
    assert report.problems == [] and any("non-distributable" in n for n in report.notes)
    result = push(f"oci:{out}:foreign", f"static:{tmp_path / 'tree'}:foreign:1")
    assert result.destinations[0].uploaded == 1 + len(image.layers)  # the config and the stored layers
    assert not (tmp_path / "tree/v2/foreign/blobs" / str(absent.digest)).exists()
    merged = merge([f"oci:{out}:foreign"], f"oci:{tmp_path / 'm'}:1")
    assert not ImageLayout.open(tmp_path / "m").has_blob(absent.digest)
    assert merged.manifests[0].digest == top.digest
