"""Retention gc and verify of static registry trees: exactly what only removed tags used goes, referrers stay with
their subject, locks against concurrent exports, leftovers of killed writers."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import need_shared, run_pyoci
from support.archives import config_for, docker_archive, layer_tar
from support.dated_images import dated_layout
from support.layouts import read_json
from support.paths import SCHEMAS

from pyoci import LayerOptions, gc, push, verify
from pyoci.commands.convert import convert
from pyoci.descriptor import Descriptor
from pyoci.errors import BlobNotFoundError, FormatError, LayoutError
from pyoci.fsutil import flock
from pyoci.jsonio import dump_json
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import DOCKER_MANIFEST_LIST, IMAGE_INDEX, IMAGE_MANIFEST, Compression
from pyoci.targets.static import StaticTree
from pyoci.walk import walk

VERSIONS = [f"v{i}" for i in range(1, 6)]


def created(version: str) -> str:
    return f"2024-0{version[1]}-15T12:00:00Z"


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dated")
    return {v: dated_layout(base / v, v, created(v)) for v in VERSIONS}


def tree_files(root: Path) -> dict[str, int]:
    """``{path: inode}`` of every file of the tree."""
    return {p.relative_to(root).as_posix(): p.stat().st_ino for p in sorted(root.rglob("*")) if p.is_file()}


def image_files(layout: Path, tag: str, repo: str) -> set[str]:
    """The tree paths an export of ``layout:tag`` into ``repo`` writes (without the tag file)."""
    store = ImageLayout.open(layout)
    files = set()
    for node in walk(store, store.entries(tag)):
        if node.raw is not None:
            kind = "oci-index" if node.descriptor.media_type == IMAGE_INDEX else "oci-manifest"
            files.add(f"v2/{repo}/manifests/{node.digest}.{kind}")
        else:
            files.add(f"v2/{repo}/blobs/{node.digest}")
    return files


def make_tree(root: Path, dated: dict[str, Path], order: list[str]) -> None:
    for version in order:  # export order differs from the images' dates: gc ranks by created
        push(f"oci:{dated[version]}:{version}", f"static:{root}:app:{version}")
    push(f"oci:{dated['v1']}:v1", f"static:{root}:other:v1")  # another repository, same blobs (hard links)


def assert_verified(root: Path) -> None:
    need_shared()
    report = verify(f"static:{root}", schemas_dir=SCHEMAS)
    assert report.problems == [], report.problems
    assert not [n for n in report.notes if "skipped" in n]


def test_keep_last_two_of_five_removes_exactly_what_only_the_others_used(
    tmp_path: Path, dated: dict[str, Path]
) -> None:
    root = tmp_path / "site"
    make_tree(root, dated, ["v3", "v5", "v1", "v4", "v2"])
    assert_verified(root)
    before = tree_files(root)
    kept = set().union(*(image_files(dated[v], v, "app") for v in ("v4", "v5")))
    gone = set().union(*(image_files(dated[v], v, "app") for v in ("v1", "v2", "v3"))) - kept
    gone |= {f"v2/app/manifests/{v}.oci-index" for v in ("v1", "v2", "v3")}
    assert len(gone) == 3 * (1 + 1 + 2 + 2 + 2)  # per version: tag, index, 2 manifests, 2 configs, 2 app layers
    assert len([f for f in kept if "/blobs/" in f]) == 2 + 2 * 2 * 2  # 2 base layers shared by every version

    dry = json.loads(run_pyoci("gc", "--dry-run", "--json", "--keep-last", "2", f"static:{root}").stdout)
    assert tree_files(root) == before  # nothing removed
    assert {item["path"] for item in dry["removed"]} == gone
    assert dry["removed_tags"] == ["app:v1", "app:v2", "app:v3"] and dry["kept_tags"] == [
        "app:v4",
        "app:v5",
        "other:v1",
    ]
    sizes = {item["path"]: item["size"] for item in dry["removed"]}
    assert all(sizes[path] == (root / path).stat().st_size for path in gone)
    other_v1 = {p.replace("v2/app/", "v2/other/") for p in image_files(dated["v1"], "v1", "app")}
    linked = sum(sizes[p] for p in gone if p.replace("v2/app/", "v2/other/") in other_v1 and "/blobs/" in p)
    assert linked > 0 and dry["freed"] == sum(sizes.values()) - linked  # the v1 blobs "other" holds free nothing

    result = gc(f"static:{root}", keep_last=2)
    assert [item.path for item in result.removed] == [item["path"] for item in dry["removed"]]
    assert [item.kind for item in result.removed][:3] == ["tag", "tag", "tag"]  # parents first
    assert [item.kind for item in result.removed][-1] == "blob"
    after = tree_files(root)
    assert set(before) - set(after) == gone and set(after) <= set(before)
    rewritten = {"v2/app/tags/list"}
    assert {p: before[p] for p in after if p not in rewritten} == {p: after[p] for p in after if p not in rewritten}
    assert read_json(root / "v2/app/tags/list") == {"name": "app", "tags": ["v4", "v5"]}
    assert read_json(root / "v2/other/tags/list") == {"name": "other", "tags": ["v1"]}
    assert read_json(root / "v2/_catalog") == {"repositories": ["app", "other"]}
    assert all((root / p).is_file() for p in other_v1)  # the other repository keeps every blob it uses
    assert_verified(root)
    again = gc(f"static:{root}", keep_last=2)
    assert again.removed == () and again.removed_tags == ()


def test_keep_patterns_and_emptied_repositories(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    push(f"oci:{dated['v1']}:v1", f"static:{root}:team:v1")
    push(f"oci:{dated['v2']}:v2", f"static:{root}:team/app:v2")
    push(f"oci:{dated['v3']}:v3", f"static:{root}:team/app:v3")
    push(f"oci:{dated['v4']}:v4", f"static:{root}:tools:release-4")
    result = gc(f"static:{root}", keep=["release-*", "team/app:v2"])
    assert result.kept_tags == ("team/app:v2", "tools:release-4")
    assert result.removed_tags == ("team/app:v3", "team:v1")
    assert read_json(root / "v2/_catalog") == {"repositories": ["team/app", "tools"]}
    assert sorted(p.name for p in (root / "v2/team").iterdir()) == ["app"]  # team's own folders gone, team/app kept
    assert "v2/team/tags/list" in [item.path for item in result.removed]
    assert_verified(root)
    result = gc(f"static:{root}", keep=["release-*"], keep_last=None)
    assert result.removed_tags == ("team/app:v2",)
    assert read_json(root / "v2/_catalog") == {"repositories": ["tools"]}
    assert sorted(p.name for p in (root / "v2").iterdir()) == ["_catalog", "index.html", "tools"]
    assert_verified(root)


def add_signature(layout: Path, subject: Descriptor, payload: bytes) -> Descriptor:
    """An OCI 1.1 referrer (artifact manifest with ``subject``) stored untagged in ``layout``."""
    store = ImageLayout.open(layout)
    empty = store.put_blob(b"{}", "application/vnd.oci.empty.v1+json")
    layer = store.put_blob(payload, "application/vnd.example.signature.v1+json")
    document = {
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "artifactType": "application/vnd.example.signature.v1+json",
        "config": empty.to_json(),
        "layers": [layer.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
    }
    descriptor = store.put_blob(dump_json(document), IMAGE_MANIFEST)
    store.update_index(lambda entries: [*entries, descriptor])
    return descriptor


def test_referrers_stay_with_their_subject(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    signatures = {}
    for version in ("v1", "v5"):
        layout = tmp_path / f"copy-{version}"
        convert_layout = dated[version]
        subprocess.run(["cp", "-a", str(convert_layout), str(layout)], check=True)
        image = ImageLayout.open(layout).resolve(version)
        signature = add_signature(layout, image, f"signed {version}".encode())
        cosign = add_signature(layout, image, f"cosign {version}".encode())
        push(f"oci:{layout}:{version}", f"static:{root}:app:{version}")
        push(f"oci:{layout}@{signature.digest}", f"static:{root}:app@{signature.digest}")  # untagged referrer
        push(f"oci:{layout}@{cosign.digest}", f"static:{root}:app:sha256-{image.digest.encoded}.sig")
        signatures[version] = (image, signature, cosign)
    result = gc(f"static:{root}", keep_last=1)
    v5, v5_sig, v5_cosign = signatures["v5"]
    _, v1_sig, v1_cosign = signatures["v1"]
    assert result.kept_tags == ("app:sha256-" + v5.digest.encoded + ".sig", "app:v5")
    assert result.removed_tags == ("app:sha256-" + signatures["v1"][0].digest.encoded + ".sig", "app:v1")
    manifests = StaticTree(root).repository("app").manifests()
    assert str(v5_sig.digest) in manifests and str(v5_cosign.digest) in manifests
    assert str(v1_sig.digest) not in manifests and str(v1_cosign.digest) not in manifests
    reader = StaticTree(root).repository("app")
    signature_layer = json.loads(reader.read_document(v5_sig))["layers"][0]["digest"]
    assert (root / "v2/app/blobs" / signature_layer).read_bytes() == b"signed v5"
    assert_verified(root)


EXPORT_SLOWLY = """
import sys, time
from pyoci.targets import static
listed = static.StaticRepository.tags
def slow(self):
    found = listed(self)
    time.sleep(1.5)
    return found
static.StaticRepository.tags = slow
from pyoci.cli.main import main
main()
"""


def test_gc_and_a_concurrent_export_lose_nothing(tmp_path: Path, dated: dict[str, Path]) -> None:
    """An export waits for a running gc, and gc waits for a running export (whose new blobs it must keep)."""
    root = tmp_path / "site"
    make_tree(root, dated, ["v1", "v2", "v3"])
    tree = StaticTree(root)
    # 1. gc holds the tree: an export of v4 waits for it, then completes
    with tree.gc_lock():
        export = subprocess.Popen(
            [sys.executable, "-m", "pyoci", "push", "-q", f"oci:{dated['v4']}:v4", f"static:{root}:app:v4"],
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        assert export.poll() is None and not (root / "v2/app/manifests/v4.oci-index").exists()
    _, err = export.communicate(timeout=60)
    assert export.returncode == 0, err.decode()
    # 2. an export of v5 is writing (slowly, in its listing) when gc --keep-last 1 starts: gc waits, then keeps v5 whole
    script = tmp_path / "slow.py"
    script.write_text(EXPORT_SLOWLY)
    export = subprocess.Popen(
        [sys.executable, str(script), "push", "-q", f"oci:{dated['v5']}:v5", f"static:{root}:app:v5"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while (
        not (root / "v2/app/manifests/v5.oci-index").exists() and export.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    collect = run_pyoci("gc", "--json", "--keep-last", "1", f"static:{root}")
    assert export.wait(timeout=60) == 0, export.stderr.read().decode() if export.stderr else ""
    removed = json.loads(collect.stdout)
    assert removed["kept_tags"] == ["app:v5", "other:v1"]
    assert removed["removed_tags"] == ["app:v1", "app:v2", "app:v3", "app:v4"]
    assert read_json(root / "v2/app/tags/list")["tags"] == ["v5"]
    assert set(image_files(dated["v5"], "v5", "app")) <= set(tree_files(root))
    assert_verified(root)


def test_kill_9_leaves_temporary_files_that_gc_removes(tmp_path: Path) -> None:
    """A writer killed midway leaves ``.pyoci-tmp-<pid>-*``; nothing is served from it and gc removes it."""
    layer = layer_tar({"big": os.urandom(96 << 20)})
    config = config_for([layer])
    manifest = b'[{"Config":"c.json","RepoTags":["x/big:1"],"Layers":["l.tar"]}]'
    archive = tmp_path / "big.tar"
    members = [("l.tar", layer, None), ("c.json", config, None), ("manifest.json", manifest, None)]
    archive.write_bytes(docker_archive(members))
    del layer, members
    convert(str(archive), f"oci:{tmp_path / 'big'}:1", options=LayerOptions(Compression.NONE))
    archive.unlink()
    root = tmp_path / "site"
    args = [sys.executable, "-m", "pyoci", "push", "-q", str(tmp_path / "big"), f"static:{root}:big:1"]
    proc = subprocess.Popen(args)
    deadline = time.monotonic() + 60
    leftovers: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None and not leftovers:
        leftovers = list((root / "v2").rglob(".pyoci-tmp-*")) if (root / "v2").is_dir() else []
        time.sleep(0.002)
    assert leftovers, "the export ended before a temporary file was seen"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob(".pyoci-tmp-*"))
    assert left and all(name.split("/")[-1].startswith(f".pyoci-tmp-{proc.pid}-") for name in left)
    assert not (root / "v2" / "big" / "tags").exists()  # nothing listed
    report = verify(f"static:{root}")
    assert [p for p in report.problems if "leftover temporary file" in p] == [
        f"{root / n}: leftover temporary file" for n in left
    ]
    result = json.loads(run_pyoci("gc", "--json", f"static:{root}").stdout)
    assert sorted(item["path"] for item in result["removed"] if item["kind"] == "temp") == left
    assert not list(root.rglob(".pyoci-tmp-*"))


def test_live_writers_temporary_files_stay(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    push(f"oci:{dated['v1']}:v1", f"static:{root}:app:v1")
    live = root / "v2/app/blobs" / f".pyoci-tmp-{os.getpid()}-x-0"
    live.write_bytes(b"partial")
    assert gc(f"static:{root}").removed == ()
    assert live.exists()


def test_gc_never_removes_through_a_symbolic_link(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    push(f"oci:{dated['v1']}:v1", f"static:{root}:app:v1")
    push(f"oci:{dated['v2']}:v2", f"static:{root}:app:v2")
    shared = tmp_path / "shared-blobs"
    (root / "v2/app/blobs").rename(shared)
    (root / "v2/app/blobs").symlink_to(shared)
    before = sorted(p.name for p in shared.iterdir())
    result = gc(f"static:{root}", keep=["v2"])
    assert result.removed_tags == ("app:v1",)
    assert sorted(p.name for p in shared.iterdir()) == before
    assert not [item for item in result.removed if item.kind == "blob"]


def test_gc_stops_when_a_kept_image_is_incomplete(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    push(f"oci:{dated['v1']}:v1", f"static:{root}:app:v1")
    push(f"oci:{dated['v2']}:v2", f"static:{root}:app:v2")
    index = json.loads((root / "v2/app/manifests/v2.oci-index").read_bytes())
    child = root / "v2/app/manifests" / f"{index['manifests'][0]['digest']}.oci-manifest"
    child.unlink()
    before = tree_files(root)
    with pytest.raises(BlobNotFoundError, match="nothing removed$"):
        gc(f"static:{root}", keep=["v2"])
    assert tree_files(root) == before
    report = verify(f"static:{root}")
    child_digest = index["manifests"][0]["digest"]
    index_digest = "sha256:" + hashlib.sha256((root / "v2/app/manifests/v2.oci-index").read_bytes()).hexdigest()
    assert [p for p in report.problems if "is missing" in p] == [
        f"static:{root}:app:v2 -> index {index_digest} -> manifest {child_digest}: static:{root}:app: "
        f"manifest {child_digest} is missing"
    ]


def test_verify_reports_each_problem_of_a_tree(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    push(f"oci:{dated['v1']}:v1", f"static:{root}:app:v1")
    push(f"oci:{dated['v2']}:v2", f"static:{root}:app:v2")
    assert verify(f"static:{root}").problems == []
    app = root / "v2/app"
    v1 = json.loads((app / "manifests/v1.oci-index").read_bytes())
    first = json.loads((app / "manifests" / f"{v1['manifests'][0]['digest']}.oci-manifest").read_bytes())
    layer = app / "blobs" / first["layers"][1]["digest"]
    os.chmod(layer, 0o644)
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))  # corrupt an app layer of v1
    (app / "manifests/v2.oci-index").rename(app / "manifests/v2.docker-list")  # stored type differs from the bytes
    (app / "tags/list").write_bytes(b'{"name":"app","tags":["v1"]}')
    v2_digest = "sha256:" + hashlib.sha256((app / "manifests/v2.docker-list").read_bytes()).hexdigest()
    problems = verify(f"static:{root}").problems
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"static:{root}:app:v1 -> index ") and f"{layer}: digest: expected" in problems[0]
    assert problems[1] == (
        f"static:{root}:app:v2 -> index {v2_digest}: static:{root}:app: index {v2_digest}: "
        f"mediaType '{IMAGE_INDEX}' differs from its descriptor's '{DOCKER_MANIFEST_LIST}'"
    )
    assert (
        problems[2]
        == f'{app / "tags/list"}: does not list what the tree holds: expected {{"name":"app","tags":["v1","v2"]}}'
    )
    only = verify(f"static:{root}:app:v2").problems
    assert len(only) == 1 and "mediaType" in only[0]


def test_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="--keep and --keep-last work on static: trees"):
        gc(str(tmp_path), keep_last=2)
    proc = run_pyoci("gc", "--keep-last", "0", f"static:{tmp_path}", check=False)
    assert proc.returncode == 2 and "--keep-last" in proc.stderr.decode()
    with pytest.raises(LayoutError, match=r"not a static registry tree \(no v2/ directory\)$"):
        gc(f"static:{tmp_path}/none")
    with pytest.raises(FormatError, match="gc works on a whole static tree"):
        gc(f"static:{tmp_path}:app")


def test_a_pattern_that_matches_no_tag_never_removes_every_tag(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    make_tree(root, dated, ["v1", "v2"])
    before = tree_files(root)
    for pattern, message in [
        ("relase-*", r"--keep 'relase-\*' matched no tag and the rules keep none: nothing removed$"),
        ("[", r"--keep '\[': '\[' at 1 has no closing '\]'$"),
        ("v[!12", r"--keep 'v\[!12': '\[' at 2 has no closing '\]'$"),
        ("", r"--keep '': an empty pattern matches no tag$"),
    ]:
        with pytest.raises(FormatError, match=message):
            gc(f"static:{root}", keep=[pattern])
    proc = run_pyoci("gc", "--keep", "relase-*", f"static:{root}", check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode() == (
        f"pyoci: error: static:{root}: --keep 'relase-*' matched no tag and the rules keep none: nothing removed\n"
    )
    assert tree_files(root) == before
    # a pattern that matches nothing beside one that keeps a tag: noted, and the summary counts the tags
    proc = run_pyoci("gc", "--keep", "v2", "--keep", "relase-*", f"static:{root}")
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == "note: --keep 'relase-*' matched no tag"
    assert lines[1].startswith(f"{root}: removed ") and "(2 tags, 1 kept)" in lines[1]
    assert read_json(root / "v2/_catalog") == {"repositories": ["app"]}
    assert read_json(root / "v2/app/tags/list")["tags"] == ["v2"]


def test_gc_upgrades_a_tree_of_the_earlier_layout(tmp_path: Path, dated: dict[str, Path]) -> None:
    root = tmp_path / "site"
    push(f"oci:{dated['v1']}:v1", f"static:{root}:app:v1")
    push(f"oci:{dated['v2']}:v2", f"static:{root}:app:v2")
    manifests = root / "v2/app/manifests"
    for path in list(manifests.iterdir()):
        path.rename(manifests / path.name.rsplit(".", 1)[0])
    assert any("earlier pyoci" in note for note in verify(f"static:{root}").notes)
    result = gc(f"static:{root}", keep=["v2"])
    assert result.removed_tags == ("app:v1",)
    assert sorted(p.name.rsplit(".", 1)[-1] for p in manifests.iterdir()) == [
        "oci-index",
        "oci-index",
        "oci-manifest",
        "oci-manifest",
    ]
    assert_verified(root)


def test_flock_protocol_is_the_trees_own_directories(tmp_path: Path, dated: dict[str, Path]) -> None:
    """The lock gc takes is a flock on ROOT/.pyoci, as the module docstring says (other tools can take it too)."""
    root = tmp_path / "site"
    push(f"oci:{dated['v1']}:v1", f"static:{root}:app:v1")
    with flock(root / ".pyoci", fcntl.LOCK_SH):
        fd = os.open(root / ".pyoci", os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
