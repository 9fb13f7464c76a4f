"""``pyoci merge``: multi-platform images from the four single-arch fixtures, checked with skopeo and umoci."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES, need_tool, run_pyoci, validate_layout
from support.layouts import blob, blob_names, document, entry, read_json, snapshot

from pyoci import (
    Compression,
    DigestMismatchError,
    FormatError,
    LayerOptions,
    LayoutError,
    MergeSource,
    Platform,
    PlatformConflictError,
    TagError,
    convert,
    merge,
)
from pyoci.mediatype import IMAGE_INDEX, IMAGE_MANIFEST

ARCHES = ["amd64", "arm64", "armv7", "386"]
ARCHIVES = [FIXTURES / f"hello-{arch}.tar" for arch in ARCHES]
PLATFORMS = [
    {"architecture": "amd64", "os": "linux"},
    {"architecture": "arm64", "os": "linux", "variant": "v8"},
    {"architecture": "arm", "os": "linux", "variant": "v7"},
    {"architecture": "386", "os": "linux"},
]
# config digests of the fixtures (fixtures/README.md): merge keeps config bytes exactly
CONFIGS = [
    "sha256:dce598df6f941326452ba93cfe4aa6e3d13da38d8d39c936bfcb36de1c548e18",
    "sha256:450e21374ce444b9e4133a36cfd6d0a19d46d31ac20768906995e74982e81083",
    "sha256:e4639cc761cee74d329d8b2162a5daf875ab894d54adb8eb93b8158bcd8ba424",
    "sha256:a5899d56886aa13fa9495274171dabf76644c157db1e5d78361c206649503e86",
]
REF_NAME = "org.opencontainers.image.ref.name"


@pytest.fixture(scope="module")
def singles(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    """Each fixture converted alone (gzip, the default): (layout, manifest digest)."""
    base = tmp_path_factory.mktemp("singles")
    out = []
    for arch, archive in zip(ARCHES, ARCHIVES, strict=True):
        result = convert(str(archive), f"oci:{base / arch}:1.0")
        out.append((base / arch, str(result.images[0].manifest.digest)))
    return out


def without_variant(source: Path, target: Path) -> str:
    """Rewrite a docker-archive with ``variant`` removed from its config; return the new config digest."""
    with tarfile.open(source) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]  # type: ignore[union-attr]
    manifest = json.loads(next(data for m, data in members if m.name == "manifest.json"))
    old_name = manifest[0]["Config"]
    config = json.loads(next(data for m, data in members if m.name == old_name))
    del config["variant"]
    new_config = json.dumps(config, separators=(",", ":")).encode()
    new_name = hashlib.sha256(new_config).hexdigest() + ".json"
    manifest[0]["Config"] = new_name
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out:
        for member, data in members:
            if member.name == old_name:
                member.name, data = new_name, new_config
            elif member.name == "manifest.json":
                data = json.dumps(manifest).encode()
            if data is not None:
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))
            else:
                out.addfile(member)
    return "sha256:" + new_name.removesuffix(".json")


def test_four_archives_make_one_index(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    out = tmp_path / "multi"
    proc = run_pyoci("merge", *map(str, ARCHIVES), f"oci:{out}:1.0")
    index_json = read_json(out / "index.json")
    assert len(index_json["manifests"]) == 1
    entry = index_json["manifests"][0]
    assert entry["mediaType"] == IMAGE_INDEX and entry["annotations"] == {REF_NAME: "1.0"}
    assert "platform" not in entry
    assert proc.stdout.decode() == entry["digest"] + "\n"
    raw = blob(out, entry["digest"])
    assert len(raw) == entry["size"] and hashlib.sha256(raw).hexdigest() == entry["digest"].split(":")[1]
    index = json.loads(raw)
    assert index["mediaType"] == IMAGE_INDEX and "annotations" not in index
    assert [m["platform"] for m in index["manifests"]] == PLATFORMS
    assert [m["digest"] for m in index["manifests"]] == [digest for _, digest in singles]
    assert {m["mediaType"] for m in index["manifests"]} == {IMAGE_MANIFEST}
    assert [json.loads(blob(out, m["digest"]))["config"]["digest"] for m in index["manifests"]] == CONFIGS
    # 8 layers + 4 configs + 4 manifests + 1 index, each stored once
    assert len(blob_names(out)) == 17
    assert sorted(os.listdir(out)) == ["blobs", "index.json", "oci-layout"]
    validate_layout(out)


def test_layouts_give_the_same_bytes_as_archives(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    from_archives = merge([str(a) for a in ARCHIVES], f"oci:{tmp_path / 'a'}:1.0")
    # plain directories and oci:DIR:TAG, mixed
    sources = [str(singles[0][0])] + [f"oci:{layout}:1.0" for layout, _ in singles[1:]]
    from_layouts = merge(sources, f"oci:{tmp_path / 'l'}:1.0")
    assert from_layouts.index == from_archives.index
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "l")
    # same filesystem: blobs are hard links to the source's, not copies
    layer = json.loads(blob(singles[1][0], singles[1][1]))["layers"][0]["digest"].split(":")[1]
    assert os.stat(tmp_path / "l/blobs/sha256" / layer).st_ino == os.stat(singles[1][0] / "blobs/sha256" / layer).st_ino
    validate_layout(tmp_path / "l")


def test_copy_when_links_fail(tmp_path: Path, singles: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    result = merge([str(layout) for layout, _ in singles], f"oci:{tmp_path / 'c'}:1.0")
    linked = merge([str(layout) for layout, _ in singles], f"oci:{tmp_path / 'd'}:1.0")
    assert result.index == linked.index
    layer = next(iter(blob_names(tmp_path / "c")))
    assert os.stat(tmp_path / "c/blobs/sha256" / layer).st_nlink == 1
    validate_layout(tmp_path / "c")


def test_same_command_same_bytes(tmp_path: Path) -> None:
    args = [*map(str, ARCHIVES[::-1])]
    first = run_pyoci("merge", *args, f"oci:{tmp_path / 'x'}:v").stdout
    second = run_pyoci("merge", *args, f"oci:{tmp_path / 'y'}:v").stdout
    assert first == second
    assert snapshot(tmp_path / "x") == snapshot(tmp_path / "y")
    # the order is canonical, not the sources': the reversed command writes the very same index
    assert [m["platform"] for m in document(tmp_path / "x", "v", IMAGE_INDEX)["manifests"]] == PLATFORMS
    forward = run_pyoci("merge", *map(str, ARCHIVES), f"oci:{tmp_path / 'z'}:v").stdout
    assert forward == first
    # merging the same sources again into the tag changes nothing
    before = snapshot(tmp_path / "x")
    assert run_pyoci("merge", *args, f"oci:{tmp_path / 'x'}:v").stdout == first
    assert snapshot(tmp_path / "x") == before
    validate_layout(tmp_path / "x")


def test_skopeo_reads_and_copies_every_platform(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    skopeo = need_tool("skopeo")
    out, other = tmp_path / "multi", tmp_path / "other"
    result = merge([str(a) for a in ARCHIVES], f"oci:{out}:1.0")
    assert result.index is not None
    raw = subprocess.run([skopeo, "inspect", "--raw", f"oci:{out}:1.0"], capture_output=True, check=True).stdout
    assert raw == blob(out, str(result.index.digest))
    assert [m["platform"] for m in json.loads(raw)["manifests"]] == PLATFORMS
    subprocess.run([skopeo, "copy", "-q", "--all", f"oci:{out}:1.0", f"oci:{other}:1.0"], check=True)
    copied = document(other, "1.0", IMAGE_INDEX)
    assert [m["digest"] for m in copied["manifests"]] == [digest for _, digest in singles]
    assert [m["platform"] for m in copied["manifests"]] == PLATFORMS
    assert set(blob_names(other)) == set(blob_names(out))
    validate_layout(other)
    # skopeo picks each platform out of the index by its platform entry
    index = json.loads(raw)
    for position, (arch, variant) in enumerate([("amd64", ""), ("arm64", "v8"), ("arm", "v7"), ("386", "")]):
        args = [skopeo, "inspect", "--override-os", "linux", "--override-arch", arch]
        args += ["--override-variant", variant] if variant else []
        picked = json.loads(subprocess.run([*args, f"oci:{out}:1.0"], capture_output=True, check=True).stdout)
        manifest = json.loads(blob(out, index["manifests"][position]["digest"]))
        assert picked["Architecture"] == arch
        assert picked["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    validate_layout(out)


def test_umoci_unpacks_a_platform_picked_by_skopeo(tmp_path: Path) -> None:
    skopeo, umoci = need_tool("skopeo"), need_tool("umoci")
    out = tmp_path / "multi"
    merge([str(a) for a in ARCHIVES], f"oci:{out}:1.0")
    single = tmp_path / "single"
    subprocess.run(
        [
            skopeo,
            "copy",
            "-q",
            "--override-arch",
            "arm",
            "--override-variant",
            "v7",
            f"oci:{out}:1.0",
            f"oci:{single}:arm",
        ],
        check=True,
    )
    assert entry(single, "arm")["digest"] == document(out, "1.0", IMAGE_INDEX)["manifests"][2]["digest"]
    bundle = tmp_path / "bundle"
    subprocess.run(
        [umoci, "unpack", "--rootless", "--image", f"{single}:arm", str(bundle)], check=True, capture_output=True
    )
    assert b"arm" in (bundle / "rootfs/app/hello.txt").read_bytes()


def test_fifth_platform_keeps_the_other_four(tmp_path: Path) -> None:
    out = tmp_path / "multi"
    merge([str(a) for a in ARCHIVES], f"oci:{out}:1.0")
    before_blobs = snapshot(out / "blobs")
    before = document(out, "1.0", IMAGE_INDEX)
    armv6 = tmp_path / "hello-armv6.tar"
    config = without_variant(FIXTURES / "hello-armv7.tar", armv6)
    # without an override the config says linux/arm with no variant
    plain = merge([str(armv6)], f"oci:{tmp_path / 'p'}:x")
    assert plain.manifests[0].platform == Platform("linux", "arm")
    assert len(plain.warnings) == 1 and "platform linux/arm names no variant" in plain.warnings[0]
    warned = run_pyoci("merge", str(armv6), f"oci:{tmp_path / 'w'}:x").stderr.decode()
    assert warned.startswith("pyoci: warning: source 1 (") and warned.count("\n") == 1
    proc = run_pyoci("merge", "--platform", "linux/arm/v6", str(armv6), f"oci:{out}:1.0")
    assert proc.stderr == b""
    after = document(out, "1.0", IMAGE_INDEX)
    assert proc.stdout.decode().strip() == entry(out, "1.0")["digest"]
    # the fifth platform takes its canonical place (arm variants newest first); the others are kept
    assert [m for m in after["manifests"] if m not in before["manifests"]] == [after["manifests"][3]]
    assert after["manifests"][3]["platform"] == {"architecture": "arm", "os": "linux", "variant": "v6"}
    assert [m for m in after["manifests"] if m in before["manifests"]] == before["manifests"]
    assert json.loads(blob(out, after["manifests"][3]["digest"]))["config"]["digest"] == config
    after_blobs = snapshot(out / "blobs")
    assert {k: v for k, v in after_blobs.items() if k in before_blobs} == before_blobs
    # the fifth image brings its manifest and config (layers are the armv7 ones) and a new index
    assert len(after_blobs) == len(before_blobs) + 3
    validate_layout(out)


def test_single_manifest_tag_becomes_an_index(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    out = tmp_path / "ci"
    first = convert(str(ARCHIVES[0]), f"oci:{out}:1.0").images[0]
    convert(str(ARCHIVES[1]), f"oci:{out}:other")
    for archive in ARCHIVES[1:]:
        merge([str(archive)], f"oci:{out}:1.0")
    index = document(out, "1.0", IMAGE_INDEX)
    assert [m["digest"] for m in index["manifests"]] == [digest for _, digest in singles]
    assert index["manifests"][0] == {
        "mediaType": IMAGE_MANIFEST,
        "digest": str(first.manifest.digest),
        "size": first.manifest.size,
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    # the other tag is untouched, and index.json keeps its order
    assert [m["annotations"][REF_NAME] for m in read_json(out / "index.json")["manifests"]] == ["1.0", "other"]
    assert entry(out, "other")["digest"] == singles[1][1]
    validate_layout(out)


def test_multi_platform_source_contributes_all(tmp_path: Path) -> None:
    merge([str(a) for a in ARCHIVES[:2]], f"oci:{tmp_path / 'a'}:1.0")
    merge([str(a) for a in ARCHIVES[2:]], f"oci:{tmp_path / 'b'}:1.0")
    both = merge([f"oci:{tmp_path / 'a'}:1.0", str(tmp_path / "b")], f"oci:{tmp_path / 'c'}:1.0")
    direct = merge([str(a) for a in ARCHIVES], f"oci:{tmp_path / 'd'}:1.0")
    assert both.index == direct.index
    assert [d.platform.to_json() for d in both.manifests if d.platform] == PLATFORMS
    validate_layout(tmp_path / "c")


def test_flat_writes_platform_entries_into_index_json(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    out = tmp_path / "flat"
    proc = run_pyoci("merge", "--flat", *map(str, ARCHIVES[:3]), str(out))
    assert proc.stdout.decode().split() == [digest for _, digest in singles[:3]]
    proc = run_pyoci("merge", "--flat", str(ARCHIVES[3]), str(out))
    assert proc.stdout.decode().split() == [digest for _, digest in singles]
    entries = read_json(out / "index.json")["manifests"]
    assert [e["digest"] for e in entries] == [digest for _, digest in singles]
    assert [e["platform"] for e in entries] == PLATFORMS
    assert all("annotations" not in e for e in entries)
    validate_layout(out)
    # a flat layout is itself a multi-platform source
    nested = merge([str(out)], f"oci:{tmp_path / 'x'}:1.0")
    assert nested.index == merge([str(a) for a in ARCHIVES], f"oci:{tmp_path / 'y'}:1.0").index
    # tagged entries of index.json stay where they are
    convert(str(ARCHIVES[0]), f"oci:{out}:keep")
    merge([str(ARCHIVES[1])], str(out), flat=True)  # already there: nothing changes
    entries = read_json(out / "index.json")["manifests"]
    assert [e.get("annotations") for e in entries] == [None] * 4 + [{REF_NAME: "keep"}]
    validate_layout(out)


def test_annotations_on_the_index(tmp_path: Path) -> None:
    out = tmp_path / "a"
    run_pyoci("merge", "--annotation", "org.opencontainers.image.version=1.0", "--annotation", "x=a=b",
              str(ARCHIVES[0]), f"oci:{out}:1.0")  # fmt: skip
    run_pyoci("merge", "--annotation", "x=c", str(ARCHIVES[1]), f"oci:{out}:1.0")
    index = document(out, "1.0", IMAGE_INDEX)
    assert index["annotations"] == {"org.opencontainers.image.version": "1.0", "x": "c"}
    assert len(index["manifests"]) == 2
    validate_layout(out)


def test_json_output(tmp_path: Path) -> None:
    proc = run_pyoci(
        "merge", "--json", "--compression", "zstd", str(ARCHIVES[0]), str(ARCHIVES[3]), str(tmp_path / "j")
    )
    result = json.loads(proc.stdout)
    assert result["tag"] == "latest"
    assert result["index"]["digest"] == entry(tmp_path / "j", "latest")["digest"]
    assert [m["platform"] for m in result["manifests"]] == [PLATFORMS[0], PLATFORMS[3]]
    assert result["added"] == [m["digest"] for m in result["manifests"]]
    layers = json.loads(blob(tmp_path / "j", result["manifests"][0]["digest"]))["layers"]
    assert {layer["mediaType"] for layer in layers} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    validate_layout(tmp_path / "j")


def test_same_platform_twice(tmp_path: Path) -> None:
    zstd = tmp_path / "zstd"
    z = convert(str(ARCHIVES[0]), f"oci:{zstd}:z", options=LayerOptions(Compression.ZSTD)).images[0]
    out = tmp_path / "out"
    merge([str(ARCHIVES[1])], f"oci:{out}:1.0")
    before = snapshot(out)
    proc = run_pyoci("merge", str(ARCHIVES[0]), str(ARCHIVES[1]), f"oci:{zstd}:z", f"oci:{out}:1.0", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "platform linux/amd64" in err and "source 1" in err and "source 3" in err and "--replace" in err
    assert snapshot(out) == before
    # --replace: the later image takes the earlier one's place
    result = merge([str(ARCHIVES[0]), str(ARCHIVES[3]), f"oci:{zstd}:z"], f"oci:{out}:1.0", replace=True)
    assert [d.platform.to_json() for d in result.manifests if d.platform] == [PLATFORMS[0], PLATFORMS[1], PLATFORMS[3]]
    assert result.manifests[0].digest == z.manifest.digest
    validate_layout(out)


def test_existing_platform_needs_replace(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    zstd = tmp_path / "zstd"
    z = convert(str(ARCHIVES[1]), f"oci:{zstd}:z", options=LayerOptions(Compression.ZSTD)).images[0]
    out = tmp_path / "out"
    merge([str(a) for a in ARCHIVES[:3]], f"oci:{out}:1.0")
    before = snapshot(out)
    with pytest.raises(PlatformConflictError, match=r"platform linux/arm64/v8: both .*:1\.0 .* and source 1"):
        merge([f"oci:{zstd}:z"], f"oci:{out}:1.0")
    assert snapshot(out) == before
    result = merge([f"oci:{zstd}:z"], f"oci:{out}:1.0", replace=True)
    assert [str(d.digest) for d in result.manifests] == [singles[0][1], str(z.manifest.digest), singles[2][1]]
    assert result.added == (z.manifest.digest,)
    validate_layout(out)


def test_platform_override_arm64_equals_arm64_v8(tmp_path: Path) -> None:
    # arm64 and arm64/v8 are one platform: an override to linux/arm64 still conflicts with v8
    out = tmp_path / "o"
    merge([MergeSource(str(ARCHIVES[1]), Platform.parse("linux/arm64"))], f"oci:{out}:1.0")
    assert document(out, "1.0", IMAGE_INDEX)["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux"}
    zstd = tmp_path / "z"
    convert(str(ARCHIVES[1]), f"oci:{zstd}:z", options=LayerOptions(Compression.ZSTD))
    with pytest.raises(PlatformConflictError):
        merge([f"oci:{zstd}:z"], f"oci:{out}:1.0")
    validate_layout(out)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("2=linux", "expected os/architecture"),
        ("linux/arm/v6", "with 2 sources, say which"),
        ("3=linux/arm/v6", "not a source number from 1 to 2"),
        ("0=linux/arm/v6", "not a source number from 1 to 2"),
        ("x=linux/arm/v6", "not a source number"),
        ("2=linux/arm64", "contradicts the image config's linux/arm"),
        ("2=windows/arm/v6", "contradicts"),
    ],
)
def test_bad_platform_override(tmp_path: Path, override: str, message: str) -> None:
    out = tmp_path / "o"
    proc = run_pyoci("merge", "--platform", override, str(ARCHIVES[0]), str(ARCHIVES[2]), str(out), check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_override_on_a_multi_platform_source(tmp_path: Path) -> None:
    merge([str(a) for a in ARCHIVES[:2]], f"oci:{tmp_path / 'a'}:1.0")
    with pytest.raises(FormatError, match="holds 2 platform images; --platform applies to one image"):
        merge([MergeSource(str(tmp_path / "a"), Platform.parse("linux/arm/v6"))], str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_bad_sources_leave_dest_unchanged(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    out = tmp_path / "out"
    merge([str(ARCHIVES[0])], f"oci:{out}:1.0")
    two_tags = tmp_path / "two"
    convert(str(ARCHIVES[0]), f"oci:{two_tags}:a")
    convert(str(ARCHIVES[1]), f"oci:{two_tags}:b")
    not_layout = tmp_path / "empty-dir"
    not_layout.mkdir()
    before = snapshot(out)
    cases = [
        (str(FIXTURES / "README.md"), "tar archive"),
        (str(not_layout), "not an OCI image layout"),
        (str(tmp_path / "absent.tar"), "cannot open"),
        (str(two_tags), "holds several images (tags: a, b); name one with oci:"),
        (f"oci:{two_tags}:c", "no image tagged 'c'"),
        (f"oci-archive:{tmp_path / 'x.tar'}", "x.tar: cannot open: No such file or directory"),
    ]
    for source, message in cases:
        proc = run_pyoci("merge", str(ARCHIVES[1]), source, f"oci:{out}:1.0", check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err.count("\n") == 1 and message in err, (source, err)
        assert snapshot(out) == before, source
    with pytest.raises(TagError):
        merge([str(two_tags)], f"oci:{out}:1.0")
    with pytest.raises(LayoutError):
        merge([str(not_layout)], f"oci:{out}:1.0")
    assert snapshot(out) == before
    validate_layout(out)


@pytest.mark.parametrize("link", [True, False])
def test_corrupt_source_blob(
    tmp_path: Path, singles: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch, link: bool
) -> None:
    source = tmp_path / "src"
    result = convert(str(ARCHIVES[1]), f"oci:{source}:1.0").images[0]
    layer = source / "blobs/sha256" / result.layers[0].digest.encoded
    data = bytearray(layer.read_bytes())
    data[100] ^= 1
    layer.chmod(0o644)
    layer.write_bytes(bytes(data))
    if not link:
        monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError(18, "cross-device")))
    out = tmp_path / "out"
    merge([str(ARCHIVES[0])], f"oci:{out}:1.0")
    before = snapshot(out)
    with pytest.raises(DigestMismatchError, match=rf"{layer}: digest: expected {result.layers[0].digest}, got sha256:"):
        merge([str(ARCHIVES[2]), f"oci:{source}:1.0"], f"oci:{out}:1.0")
    assert snapshot(out) == before
    with pytest.raises(DigestMismatchError):
        merge([f"oci:{source}:1.0"], str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()
    validate_layout(out)


def test_bad_arguments(tmp_path: Path) -> None:
    for args, message in [
        (["--flat", str(ARCHIVES[0]), f"oci:{tmp_path / 'o'}:t"], "--flat writes untagged platform entries"),
        (["--flat", "--annotation", "a=b", str(ARCHIVES[0]), str(tmp_path / "o")], "--flat writes no image index"),
        (["--annotation", "novalue", str(ARCHIVES[0]), str(tmp_path / "o")], "expected KEY=VALUE"),
        ([str(ARCHIVES[0]), f"oci-archive:{tmp_path / 'o.tar'}"], "merge writes an OCI layout directory"),
    ]:
        proc = run_pyoci("merge", *args, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


CHILD = r"""
import sys
from pathlib import Path
from pyoci.layout.store import ImageLayout
from pyoci.commands.merge import merge

original = ImageLayout.update_index
destination = Path(sys.argv[2]).resolve()

def paused(self, change):
    if Path(self.root).resolve() == destination:
        # every source is read and staged; hold here until the parent lets all children go at once
        print("ready", flush=True)
        sys.stdin.readline()
    return original(self, change)

ImageLayout.update_index = paused
print(merge([sys.argv[1]], f"oci:{destination}:1.0").index.digest, flush=True)
"""


def test_two_concurrent_merges_into_one_tag_lose_nothing(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    out = tmp_path / "ci"
    merge([str(ARCHIVES[0])], f"oci:{out}:1.0")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(archive), str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for archive in ARCHIVES[1:]
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        for child in children:  # all have read their sources: now all update index.json
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert [child.returncode for child in children] == [0, 0, 0], outputs
    index = document(out, "1.0", IMAGE_INDEX)
    assert index["manifests"][0]["digest"] == singles[0][1]
    assert sorted(m["digest"] for m in index["manifests"][1:]) == sorted(digest for _, digest in singles[1:])
    assert entry(out, "1.0")["digest"] in [o.decode().strip() for o, _ in outputs]
    validate_layout(out)


def test_archive_forms_stdin_and_compressed(tmp_path: Path, singles: list[tuple[Path, str]]) -> None:
    out = tmp_path / "s"
    gz = (FIXTURES / "hello-amd64.tar.gz").read_bytes()
    sources = ["-", f"docker-archive:{ARCHIVES[1]}:example.com/hello:1.0", f"docker-archive:{ARCHIVES[2]}:@0"]
    proc = run_pyoci("merge", *sources, str(FIXTURES / "hello-amd64.tar.zst"), f"oci:{out}:1.0", input=gz)
    index = document(out, "1.0", IMAGE_INDEX)
    assert proc.stdout.decode().strip() == entry(out, "1.0")["digest"]
    # the .tar.zst is the same amd64 image as stdin's .tar.gz: the very same manifest, not a conflict
    assert [m["digest"] for m in index["manifests"]] == [digest for _, digest in singles[:3]]
    validate_layout(out)


def test_concurrent_appends_give_one_digest_whatever_the_arrival_order(tmp_path: Path) -> None:
    """Four CI jobs each append their platform to one tag at once: always the digest of one merge of all four."""
    import subprocess
    import sys

    expected = str(merge([str(a) for a in ARCHIVES], f"oci:{tmp_path / 'all'}:1.0").index.digest)  # type: ignore[union-attr]
    for round_number, order in enumerate(
        (ARCHIVES, ARCHIVES[::-1], [ARCHIVES[2], ARCHIVES[0], ARCHIVES[3], ARCHIVES[1]])
    ):
        out = tmp_path / f"round{round_number}"
        jobs = [
            subprocess.Popen(
                [sys.executable, "-m", "pyoci", "merge", "-q", str(a), f"oci:{out}:1.0"], stderr=subprocess.PIPE
            )
            for a in order
        ]
        for job in jobs:
            assert job.wait(120) == 0, job.stderr.read() if job.stderr else ""
        assert entry(out, "1.0")["digest"] == expected
        validate_layout(out)


def test_corrupt_source_layouts_are_refused(tmp_path: Path) -> None:
    """A manifest whose layers do not match its config's diff_ids is no image to merge; the destination stays."""
    src = tmp_path / "src"
    image = convert(str(ARCHIVES[0]), f"oci:{src}:1.0").images[0]
    manifest = json.loads(blob(src, str(image.manifest.digest)))
    manifest["layers"] = manifest["layers"][:1]
    from pyoci.descriptor import REF_NAME
    from pyoci.jsonio import dump_json
    from pyoci.layout.store import ImageLayout

    layout = ImageLayout.open(src)
    short = layout.put_blob(dump_json(manifest), IMAGE_MANIFEST)
    layout.update_index(lambda current: [*current, short.with_annotations({REF_NAME: "short"})])
    out = tmp_path / "out"
    merge([str(ARCHIVES[1])], f"oci:{out}:keep")
    before = snapshot(out)
    proc = run_pyoci("merge", f"oci:{src}:short", f"oci:{out}:new", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and "1 layers but the config lists 2 diff_ids" in err, err
    assert snapshot(out) == before


def test_a_manifest_named_by_sha512_is_merged_under_that_name(tmp_path: Path) -> None:
    from pyoci.descriptor import REF_NAME, Descriptor
    from pyoci.digest import Digest
    from pyoci.layout.store import ImageLayout
    from pyoci.manifest import Index

    src = tmp_path / "src"
    image = convert(str(ARCHIVES[0]), f"oci:{src}:1.0").images[0].manifest
    layout = ImageLayout.open(src)
    raw = layout.read_blob(image)
    digest = Digest.of_bytes(raw, "sha512")
    (src / "blobs" / "sha512").mkdir()
    (src / "blobs" / "sha512" / digest.encoded).write_bytes(raw)
    index = Index.build([Descriptor(image.media_type, digest, len(raw), platform=image.platform)])
    top = layout.put_blob(index.raw, IMAGE_INDEX)
    layout.update_index(lambda current: [*current, top.with_annotations({REF_NAME: "s512"})])
    result = merge([f"oci:{src}:s512"], f"oci:{tmp_path / 'out'}:1")
    assert result.manifests[0].digest == digest
    assert (tmp_path / "out" / "blobs" / "sha512" / digest.encoded).read_bytes() == raw
    validate_layout(tmp_path / "out")
