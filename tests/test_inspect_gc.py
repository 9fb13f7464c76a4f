"""``pyoci inspect``, ``pyoci untag`` and ``pyoci gc`` (with a real second process writing meanwhile)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, run_pyoci, validate_layout
from support.layouts import blob, blob_names, image_blobs, read_json, snapshot

from pyoci import Descriptor, TagError, convert, gc, inspect, merge, untag
from pyoci.errors import BlobNotFoundError, FormatError, LayoutError
from pyoci.mediatype import IMAGE_CONFIG, IMAGE_INDEX, IMAGE_MANIFEST, LAYER

ARCHES = ["amd64", "arm64", "armv7", "386"]
ARCHIVES = [FIXTURES / f"hello-{arch}.tar" for arch in ARCHES]
AMD64_CONFIG = "sha256:dce598df6f941326452ba93cfe4aa6e3d13da38d8d39c936bfcb36de1c548e18"
AMD64_DIFF_IDS = [
    "sha256:725d25af06dcbe703996e363adf29819bc09d6fed6aa9d41a1bc89674ad4d026",
    "sha256:a3f46b09c1526b80e36f7b326273ca370eb4347fe708c9957f20484295560299",
]
REF_NAME = "org.opencontainers.image.ref.name"


def test_inspect_multi_platform_layout(tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = merge([str(a) for a in ARCHIVES], f"oci:{out}:1.0", annotations={"a": "b"})
    assert result.index is not None
    convert(str(ARCHIVES[0]), f"oci:{out}:amd")
    convert(str(ARCHIVES[0]), f"oci:{out}:also-amd")
    found = inspect(str(out))
    assert found.kind == "oci-layout"
    assert [image.tags for image in found.images] == [("1.0",), ("amd", "also-amd")]
    multi, single = found.images
    assert multi.descriptor is not None and multi.descriptor.media_type == IMAGE_INDEX
    assert multi.descriptor.digest == result.index.digest
    assert multi.annotations == {"a": "b"}
    assert [str(p.platform) for p in multi.platforms] == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/386"]
    assert [p.manifest for p in multi.platforms] == [
        Descriptor(d.media_type, d.digest, d.size) for d in result.manifests
    ]
    amd = multi.platforms[0]
    manifest = json.loads(blob(out, str(result.manifests[0].digest)))
    assert str(amd.config.digest) == AMD64_CONFIG
    assert [layer.size for layer in amd.layers] == [layer["size"] for layer in manifest["layers"]]
    assert amd.layers_size == sum(layer["size"] for layer in manifest["layers"])
    assert (amd.created, amd.entrypoint, amd.cmd) == ("1970-01-01T00:00:00Z", ("/app/hello",), ("--greet",))
    assert single.platforms[0].manifest == multi.platforms[0].manifest
    # several images and no tag: --raw is index.json itself
    assert found.raw == (out / "index.json").read_bytes()
    # with a tag: the index bytes exactly
    raw = run_pyoci("inspect", "--raw", f"oci:{out}:1.0").stdout
    assert raw == blob(out, str(result.index.digest))
    raw = run_pyoci("inspect", "--raw", f"oci:{out}:amd").stdout
    assert raw == blob(out, str(result.manifests[0].digest))
    text = run_pyoci("inspect", f"oci:{out}:1.0").stdout.decode()
    assert f"1.0: image index {result.index.digest} ({result.index.size} bytes)" in text
    assert "  linux/arm/v7\n" in text and "annotation a=b" in text
    assert f"    manifest    {result.manifests[2].digest} (556 bytes)" in text
    assert '    entrypoint  ["/app/hello"]' in text
    as_json = json.loads(run_pyoci("inspect", "--json", f"oci:{out}:1.0").stdout)
    assert as_json["kind"] == "oci-layout" and as_json["images"][0]["tags"] == ["1.0"]
    assert [p["platform"] for p in as_json["images"][0]["platforms"]][1] == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
    }
    assert as_json["images"][0]["platforms"][0]["layers_size"] == amd.layers_size
    validate_layout(out)


@pytest.mark.parametrize("name", ["hello-amd64.tar", "hello-amd64.tar.gz", "hello-amd64.tar.zst"])
def test_inspect_docker_archive(name: str) -> None:
    found = inspect(str(FIXTURES / name))
    assert found.kind == "docker-archive"
    (image,) = found.images
    assert image.tags == ("example.com/hello:1.0",) and image.descriptor is None
    (item,) = image.platforms
    assert str(item.platform) == "linux/amd64" and item.manifest is None
    assert (str(item.config.digest), item.config.size, item.config.media_type) == (AMD64_CONFIG, 604, IMAGE_CONFIG)
    # uncompressed tars: digest = diff_id, size = the tar member's size (fixtures/README.md, tar -tv)
    assert [str(layer.digest) for layer in item.layers] == AMD64_DIFF_IDS
    assert [layer.size for layer in item.layers] == [9216, 3584]
    assert {layer.media_type for layer in item.layers} == {LAYER}
    with tarfile.open(FIXTURES / "hello-amd64.tar") as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        assert found.raw == member.read()


def test_inspect_archive_from_stdin_and_cli() -> None:
    data = (FIXTURES / "hello-arm64.tar").read_bytes()
    text = run_pyoci("inspect", "-", input=data).stdout.decode()
    assert text.startswith("-: docker-archive, 1 image\nexample.com/hello:1.0:\n  linux/arm64/v8\n")
    assert "    layers      2, 12800 bytes uncompressed (9216 + 3584)\n" in text
    as_json = json.loads(run_pyoci("inspect", "--json", str(FIXTURES / "hello-arm64.tar")).stdout)
    assert as_json["images"][0]["platforms"][0]["manifest"] is None


def test_inspect_errors(tmp_path: Path) -> None:
    convert(str(ARCHIVES[0]), f"oci:{tmp_path / 'l'}:1.0")
    for source, message in [
        (f"oci:{tmp_path / 'l'}:2.0", "no image tagged '2.0' in index.json (tags: 1.0)"),
        (str(tmp_path), "not an OCI image layout"),
        (str(FIXTURES / "README.md"), "tar archive"),
    ]:
        proc = run_pyoci("inspect", source, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err.count("\n") == 1 and message in err, err


def test_untag_then_gc_frees_exactly_the_unshared_blobs(tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = merge([str(a) for a in ARCHIVES], f"oci:{out}:multi")
    assert result.index is not None
    convert(str(ARCHIVES[0]), f"oci:{out}:amd")  # the same amd64 manifest as inside the index
    everything = set(blob_names(out))
    amd = image_blobs(out, str(result.manifests[0].digest))
    assert len(everything) == 17 and len(amd) == 4
    assert gc(str(out)).removed == ()
    proc = run_pyoci("untag", f"{out}:multi")
    assert proc.stdout.decode() == f"{result.index.digest}\n"
    assert [e["annotations"][REF_NAME] for e in read_json(out / "index.json")["manifests"]] == ["amd"]
    assert set(blob_names(out)) == everything  # untag removes no blob
    expected = sorted(everything - amd)
    dry = run_pyoci("gc", "--dry-run", str(out))
    lines = dry.stdout.decode().splitlines()
    sizes = {f"blobs/sha256/{name}": (out / "blobs/sha256" / name).stat().st_size for name in expected}
    assert lines == [f"{size}\t{path}" for path, size in sizes.items()]
    assert f"would remove 13 files, {sum(sizes.values())} bytes; 4 blobs reachable" in dry.stderr.decode()
    assert set(blob_names(out)) == everything
    done = json.loads(run_pyoci("gc", "--json", f"oci:{out}").stdout)
    assert [item["path"] for item in done["removed"]] == list(sizes)
    assert done["freed"] == sum(sizes.values()) and done["kept"] == 4 and not done["dry_run"]
    assert set(blob_names(out)) == amd
    validate_layout(out)
    assert gc(str(out)).removed == ()


def test_untag_errors(tmp_path: Path) -> None:
    out = tmp_path / "l"
    convert(str(ARCHIVES[0]), f"oci:{out}:1.0")
    before = snapshot(out)
    with pytest.raises(TagError, match=r"no image tagged '2\.0'"):
        untag(f"oci:{out}:2.0")
    with pytest.raises(FormatError, match=r"name the tag to remove \(LAYOUT:TAG\)"):
        untag(str(out))
    with pytest.raises(FormatError, match="name the tag"):
        untag(f"oci:{out}")
    proc = run_pyoci("untag", f"{out}:nope", check=False)
    assert proc.returncode == 1 and proc.stderr.decode().count("\n") == 1
    assert snapshot(out) == before
    assert untag(f"oci:{out}:1.0").removed[0].ref_name == "1.0"
    assert read_json(out / "index.json")["manifests"] == []


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_gc_removes_leftover_temp_files_of_dead_processes(tmp_path: Path) -> None:
    out = tmp_path / "l"
    convert(str(ARCHIVES[0]), f"oci:{out}:1.0")
    pid = dead_pid()
    (out / f".pyoci-tmp-{pid}-aaaaaa").write_bytes(b"x" * 10)
    (out / f".pyoci-tmp-{pid}-dir").mkdir()
    (out / f".pyoci-tmp-{pid}-dir/blob").write_bytes(b"y" * 7)
    live = out / f".pyoci-tmp-{os.getpid()}-bbbbbb"
    live.write_bytes(b"z")
    result = gc(str(out), dry_run=True)
    assert [(g.path, g.size, g.kind) for g in result.removed] == [
        (f".pyoci-tmp-{pid}-aaaaaa", 10, "temp"),
        (f".pyoci-tmp-{pid}-dir", 7, "temp"),
    ]
    assert gc(str(out)).freed == 17
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".pyoci")) == [live.name]
    live.unlink()
    validate_layout(out)


def test_gc_stops_when_a_reachable_manifest_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "l"
    image = convert(str(ARCHIVES[0]), f"oci:{out}:1.0").images[0]
    (out / "blobs/sha256" / ("0" * 64)).write_bytes(b"garbage")
    (out / "blobs/sha256" / image.manifest.digest.encoded).unlink()
    before = snapshot(out)
    with pytest.raises(BlobNotFoundError, match=f"blob {image.manifest.digest} is missing"):
        gc(str(out))
    assert snapshot(out) == before


WRITER = r"""
import json, sys
from pyoci import mediatype
from pyoci.descriptor import REF_NAME
from pyoci.layout.store import writing
from pyoci.manifest import Manifest

with writing(sys.argv[1]) as layout:
    entry = layout.read_index().manifests[0]
    old = Manifest.parse(layout.read_blob(entry), "manifest")
    config = json.loads(layout.read_blob(old.config))
    config["config"]["Labels"]["written-by"] = "child"
    new_config = layout.put_blob(json.dumps(config).encode(), mediatype.IMAGE_CONFIG)
    manifest = Manifest.build(new_config, old.layers)
    layout.put_blob(manifest.raw, manifest.media_type)
    print(manifest.digest, new_config.digest, flush=True)
    sys.stdin.readline()  # mid-write: blobs in place, index.json not yet updated
    layout.update_index(lambda current: [*current, manifest.descriptor({REF_NAME: "child"}, entry.platform)])
"""


def blocked_on_flock(pid: int) -> bool:
    try:
        locks = Path("/proc/locks").read_text()
    except OSError:
        return False
    return any("->" in line and f" {pid} " in line for line in locks.splitlines())


def test_gc_waits_for_a_writer_and_keeps_its_blobs(tmp_path: Path) -> None:
    out = tmp_path / "l"
    convert(str(ARCHIVES[0]), f"oci:{out}:1.0")
    garbage = out / "blobs/sha256" / ("0" * 64)
    garbage.write_bytes(b"unreferenced")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    collector = None
    try:
        assert writer.stdout is not None and writer.stdin is not None
        manifest_digest, config_digest = writer.stdout.readline().decode().split()
        collector = subprocess.Popen(
            [sys.executable, "-m", "pyoci", "gc", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 20
        while not blocked_on_flock(collector.pid) and time.monotonic() < deadline:
            assert collector.poll() is None, collector.communicate()
            time.sleep(0.05)
        time.sleep(0.2)
        assert collector.poll() is None  # gc waits for the writer
        assert garbage.exists()
        writer.stdin.write(b"go\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0, writer.communicate()
        stdout, stderr = collector.communicate(timeout=60)
    finally:
        for proc in (writer, collector):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert collector.returncode == 0, stderr
    assert stdout.decode() == f"12\tblobs/sha256/{'0' * 64}\n"
    assert not garbage.exists()
    for digest in (manifest_digest, config_digest):
        assert (out / "blobs/sha256" / digest.split(":")[1]).exists()
    entries = read_json(out / "index.json")["manifests"]
    assert [(e["annotations"][REF_NAME], e["mediaType"]) for e in entries] == [
        ("1.0", IMAGE_MANIFEST),
        ("child", IMAGE_MANIFEST),
    ]
    assert entries[1]["digest"] == manifest_digest
    validate_layout(out)


def test_gc_refuses_entries_it_cannot_follow(tmp_path: Path) -> None:
    import json as _json

    from pyoci import LayoutError, convert, gc

    layout = tmp_path / "l"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{layout}:1.0")
    index_path = layout / "index.json"
    original = _json.loads(index_path.read_text())
    for media_type in ("application/vnd.example.thing+json", "application/vnd.oci.image.index.v1+json"):
        index = _json.loads(_json.dumps(original))
        index["manifests"][0]["mediaType"] = media_type
        index_path.write_text(_json.dumps(index))
        before = sorted(p.name for p in (layout / "blobs/sha256").iterdir())
        with pytest.raises(LayoutError, match="nothing removed"):
            gc(layout)
        assert sorted(p.name for p in (layout / "blobs/sha256").iterdir()) == before


@pytest.mark.parametrize("linked", ["blobs", "blobs/sha256"])
def test_gc_never_deletes_through_a_shared_blob_store(tmp_path: Path, linked: str) -> None:
    """A layout whose blobs/ (or blobs/sha256) is a symlink to a store other layouts share: gc refuses."""
    store = tmp_path / "store"
    other = tmp_path / "other"
    convert(str(ARCHIVES[1]), f"oci:{other}:1.0")
    shutil.move(str(other / linked), store)
    (other / linked).symlink_to(store)
    layout = tmp_path / "mine"
    layout.mkdir()
    (layout / "blobs").mkdir()
    if linked == "blobs":
        (layout / "blobs").rmdir()
    (layout / linked).symlink_to(store)
    convert(str(ARCHIVES[0]), f"oci:{layout}:1.0")  # writes into the shared store, as intended
    untag(f"oci:{layout}:1.0")
    before = snapshot(store)
    with pytest.raises(LayoutError, match="a symlink to a shared blob store .*: nothing removed"):
        gc(str(layout))
    assert snapshot(store) == before
    validate_layout(other)


def test_inspect_of_an_archive_writes_nothing(tmp_path: Path) -> None:
    """Layers are only hashed: no temporary directory, no staged blob, anywhere."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    args = [sys.executable, "-m", "pyoci", "inspect", "--json", str(ARCHIVES[0])]
    proc = subprocess.run(args, cwd=scratch, env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    summary = json.loads(proc.stdout)
    assert summary["kind"] == "docker-archive" and len(summary["images"][0]["platforms"][0]["layers"]) == 2
    assert list(scratch.iterdir()) == []
