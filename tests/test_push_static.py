"""``pyoci push`` to a static registry tree: the files, nginx serving every export without a reload, skopeo pulls,
concurrent exports, the upgrade of a tree written by the earlier layout."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import need_shared, need_tool, run_pyoci
from support.images import platform_layouts
from support.layouts import read_json
from support.nginx import Nginx, nginx_binary, start_nginx
from support.paths import SCHEMAS
from support.pull import assert_pulled_exactly, skopeo_pull

from pyoci import mediatype, push, verify
from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.targets.static import KIND_ORDER, StaticTree, nginx_config, nginx_locations

SINGLE_REF = "single"
MULTI_REF = "team/multi"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def layout_files(layout: Path, tag: str) -> tuple[dict[str, tuple[str, bytes]], set[str]]:
    """``({digest: (media type, bytes)} of its manifests and indexes, {digest} of its blobs})`` of a layout tag."""
    from pyoci.layout.store import ImageLayout
    from pyoci.walk import walk

    store = ImageLayout.open(layout)
    manifests, blobs = {}, set()
    for node in walk(store, store.entries(tag)):
        if node.raw is not None:
            manifests[str(node.digest)] = (node.descriptor.media_type, node.raw)
        else:
            blobs.add(str(node.digest))
    return manifests, blobs


def kind(media_type: str) -> str:
    return {
        mediatype.IMAGE_INDEX: "oci-index",
        mediatype.IMAGE_MANIFEST: "oci-manifest",
        mediatype.DOCKER_MANIFEST_LIST: "docker-list",
        mediatype.DOCKER_MANIFEST: "docker-manifest",
    }[media_type]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return platform_layouts(tmp_path_factory.mktemp("layouts"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, layouts: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("static") / "site"
    push(layouts["single"], f"static:{root}:{SINGLE_REF}")  # tag from the source: 1.0
    multi = f"oci:{layouts['multi']}:multi"
    run_pyoci("push", "-q", multi, f"static:{root}:{MULTI_REF}:2.0", f"static:{root}:{MULTI_REF}")
    return root


def _nginx() -> str:
    found = nginx_binary()
    if found is None:
        return need_tool("nginx")
    return found


@pytest.fixture(scope="module")
def served(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_nginx(_nginx(), tmp_path_factory.mktemp("nginx"), f"include {tree}/.pyoci/nginx.conf;")
    yield server.host
    server.stop()


def test_tree_files(tree: Path, layouts: dict[str, Path]) -> None:
    single_manifests, single_blobs = layout_files(layouts["single"], "1.0")
    multi_manifests, multi_blobs = layout_files(layouts["multi"], "multi")
    [single_digest] = [d for d, (t, _) in single_manifests.items()]
    [multi_digest] = [d for d, (t, _) in multi_manifests.items() if t == mediatype.IMAGE_INDEX]
    expected = {
        "v2/index.html", "v2/_catalog", ".pyoci/nginx.conf", ".pyoci/nginx-locations.conf",
        f"v2/{SINGLE_REF}/tags/list", f"v2/{MULTI_REF}/tags/list",
        f"v2/{SINGLE_REF}/manifests/1.0.oci-manifest",
        f"v2/{MULTI_REF}/manifests/2.0.oci-index", f"v2/{MULTI_REF}/manifests/multi.oci-index",
    }  # fmt: skip
    expected |= {f"v2/{SINGLE_REF}/manifests/{d}.{kind(t)}" for d, (t, _) in single_manifests.items()}
    expected |= {f"v2/{MULTI_REF}/manifests/{d}.{kind(t)}" for d, (t, _) in multi_manifests.items()}
    expected |= {f"v2/{SINGLE_REF}/blobs/{d}" for d in single_blobs} | {
        f"v2/{MULTI_REF}/blobs/{d}" for d in multi_blobs
    }
    assert tree_files(tree) == expected
    assert len(multi_manifests) == 5 and len(multi_blobs) == 4 * 3
    v2 = tree / "v2"
    assert (v2 / "index.html").read_bytes() == b"{}"
    assert (v2 / "_catalog").read_bytes() == b'{"repositories":["single","team/multi"]}'
    assert (v2 / SINGLE_REF / "tags" / "list").read_bytes() == b'{"name":"single","tags":["1.0"]}'
    assert read_json(v2 / MULTI_REF / "tags" / "list") == {"name": MULTI_REF, "tags": ["2.0", "multi"]}
    for digest, (_, raw) in multi_manifests.items():  # exact bytes, by digest and under the tags
        assert (v2 / MULTI_REF / "manifests" / f"{digest}.{kind(_)}").read_bytes() == raw
    assert (v2 / MULTI_REF / "manifests" / "2.0.oci-index").read_bytes() == multi_manifests[multi_digest][1]
    assert (v2 / SINGLE_REF / "manifests" / "1.0.oci-manifest").read_bytes() == single_manifests[single_digest][1]
    for digest in multi_blobs:
        assert sha256((v2 / MULTI_REF / "blobs" / digest).read_bytes()) == digest
    assert (tree / ".pyoci" / "nginx.conf").read_text() == nginx_config(tree)
    assert (tree / ".pyoci" / "nginx-locations.conf").read_text() == nginx_locations()
    need_shared()
    report = verify(f"static:{tree}", schemas_dir=SCHEMAS)  # every manifest and index against the OCI schemas
    assert (report.problems, report.notes, report.blobs_checked) == ([], [], 4 + 17)  # per repository


def test_nginx_configuration_is_fixed(tree: Path, layouts: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    push(layouts["pair"], f"static:{other}:x/y:z")
    assert (other / ".pyoci" / "nginx-locations.conf").read_bytes() == (
        tree / ".pyoci/nginx-locations.conf"
    ).read_bytes()
    conf = other / ".pyoci" / "nginx.conf"
    assert conf.read_text() == f'root "{other}";\n' + nginx_locations()
    before = conf.stat()
    push(layouts["triple"], f"static:{other}:x/y:w")
    push(layouts["single"], f"static:{other}:new/repo:1")
    after = conf.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # never rewritten


def test_reexport_adds_without_rewriting_blobs(layouts: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "site"
    first = push(layouts["single"], f"static:{root}:app:1")
    blobs = sorted((root / "v2" / "app" / "blobs").iterdir())
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in blobs}
    again = push(layouts["single"], [f"static:{root}:app:2", f"static:{root}:copy:1"])
    tagged = again.destinations[0]
    assert (tagged.manifests_skipped, tagged.uploaded, tagged.skipped, tagged.manifests) == (0, 0, 0, 1)  # the tag
    assert (again.destinations[1].mounted, again.destinations[1].uploaded) == (3, 0)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (root / "v2" / "app" / "blobs").iterdir()}
    assert after == before
    copy = {p.name: p.stat().st_ino for p in (root / "v2" / "copy" / "blobs").iterdir()}
    assert copy == {name: ino for name, (ino, _) in before.items()}  # hard links, not copies
    assert read_json(root / "v2" / "app" / "tags" / "list")["tags"] == ["1", "2"]
    assert read_json(root / "v2" / "_catalog")["repositories"] == ["app", "copy"]
    assert first.digest == again.digest
    manifests = StaticTree(root).repository("app").manifests()
    assert sorted(manifests) == ["1", "2", str(first.digest)]
    assert {f.media_type for f in manifests.values()} == {mediatype.IMAGE_MANIFEST}


def check_every_manifest_url(client: httpx.Client, root: Path) -> int:
    """HEAD and GET on every manifest URL of the tree: status, Content-Type, digest header, exact bytes."""
    static = StaticTree(root)
    checked = 0
    for repo in static.repositories():
        for reference, file in static.repository(repo).manifests().items():
            raw = file.path.read_bytes()
            for method in ("HEAD", "GET"):
                response = client.request(method, f"/v2/{repo}/manifests/{reference}")
                assert response.status_code == 200, (method, repo, reference)
                assert response.headers["content-type"] == file.media_type
                assert int(response.headers["content-length"]) == len(raw)
                assert response.headers["docker-distribution-api-version"] == "registry/2.0"
                if file.is_tag:
                    assert "docker-content-digest" not in response.headers  # not knowable from the URL
                    assert response.headers["cache-control"] == "no-cache" and "etag" not in response.headers
                else:
                    assert response.headers["docker-content-digest"] == reference == sha256(raw)
                if method == "GET":
                    assert response.content == raw
            checked += 1
    return checked


def test_nginx_answers(tree: Path, served: str) -> None:
    with httpx.Client(base_url=f"http://{served}") as client:
        ping = client.get("/v2/")
        assert (ping.status_code, ping.json(), ping.headers["content-type"]) == (200, {}, "application/json")
        assert ping.headers["docker-distribution-api-version"] == "registry/2.0"
        assert check_every_manifest_url(client, tree) == 2 + 2 + 5  # single: tag + digest; multi: 2 tags, 5 digests
        catalog = client.get("/v2/_catalog")
        assert catalog.headers["content-type"] == "application/json"
        assert catalog.json()["repositories"] == [SINGLE_REF, MULTI_REF]
        listing = client.get(f"/v2/{MULTI_REF}/tags/list")
        assert listing.json()["tags"] == ["2.0", "multi"] and listing.headers["cache-control"] == "no-cache"
        blob = next((tree / "v2" / SINGLE_REF / "blobs").iterdir())
        head = client.head(f"/v2/{SINGLE_REF}/blobs/{blob.name}")
        assert head.status_code == 200 and head.headers["docker-content-digest"] == blob.name
        assert head.headers["content-type"] == "application/octet-stream"
        assert int(head.headers["content-length"]) == blob.stat().st_size
        assert "immutable" in head.headers["cache-control"]
        assert client.get(f"/v2/{SINGLE_REF}/manifests/nope").status_code == 404
        assert client.get(f"/v2/{SINGLE_REF}/manifests/1.0.oci-manifest").status_code == 404  # no file names
        assert client.get(f"/v2/{SINGLE_REF}/manifests/sha256:{'0' * 64}").status_code == 404
        assert "docker-content-digest" not in client.get(f"/v2/{SINGLE_REF}/manifests/sha256:{'0' * 64}").headers
        assert client.get("/.pyoci/nginx.conf").status_code == 404
        assert client.get("/v2/single/").status_code == 404
        (tree / "v2" / SINGLE_REF / "manifests" / ".pyoci-tmp-1-x").write_bytes(b"{}")
        try:
            assert client.get(f"/v2/{SINGLE_REF}/manifests/.pyoci-tmp-1-x").status_code == 404
        finally:
            (tree / "v2" / SINGLE_REF / "manifests" / ".pyoci-tmp-1-x").unlink()
        assert client.put(f"/v2/{SINGLE_REF}/manifests/1.0", content=b"{}").status_code in (403, 405)


@pytest.mark.parametrize(("repo", "tag"), [(SINGLE_REF, "1.0"), (MULTI_REF, "2.0"), (MULTI_REF, "multi")])
def test_skopeo_pulls_from_nginx(tree: Path, served: str, tmp_path: Path, repo: str, tag: str) -> None:
    need_tool("skopeo")
    skopeo_pull(served, repo, tag, tmp_path / "pulled")
    assert_pulled_exactly(tmp_path / "pulled", tree, repo, tag)


def test_every_export_is_served_without_reload(layouts: dict[str, Path], tmp_path: Path) -> None:
    """One nginx, started once: export A, pull; re-export A with another platform and add B; pull both again."""
    need_tool("skopeo")
    root = tmp_path / "site"
    push(layouts["pair"], f"static:{root}:app:a")
    server: Nginx = start_nginx(_nginx(), tmp_path / "nginx", f"include {root}/.pyoci/nginx.conf;")
    try:
        with httpx.Client(base_url=f"http://{server.host}") as client:
            skopeo_pull(server.host, "app", "a", tmp_path / "pull1")
            assert_pulled_exactly(tmp_path / "pull1", root, "app", "a")
            assert len(read_json(root / "v2/app/manifests/a.oci-index")["manifests"]) == 2
            first_a = client.get("/v2/app/manifests/a").content

            push(layouts["triple"], [f"static:{root}:app:a", f"static:{root}:app:b"])  # armv7 added; new tag b
            second_a = client.get("/v2/app/manifests/a")
            assert (
                second_a.content != first_a and second_a.content == (root / "v2/app/manifests/a.oci-index").read_bytes()
            )
            assert len(second_a.json()["manifests"]) == 3
            assert client.get("/v2/app/tags/list").json()["tags"] == ["a", "b"]
            for tag in ("a", "b"):
                dest = tmp_path / f"pull-{tag}"
                skopeo_pull(server.host, "app", tag, dest)
                assert_pulled_exactly(dest, root, "app", tag)
            push(layouts["single"], f"static:{root}:app:a")  # the tag becomes a single image: its kind changes
            assert sorted(p.name for p in (root / "v2/app/manifests").glob("a.*")) == ["a.oci-manifest"]
            assert client.head("/v2/app/manifests/a").headers["content-type"] == mediatype.IMAGE_MANIFEST
            skopeo_pull(server.host, "app", "a", tmp_path / "pull-single")
            assert_pulled_exactly(tmp_path / "pull-single", root, "app", "a")
            assert check_every_manifest_url(client, root) == 2 + 1 + 3 + 1  # a, b; index of b; 3 + 1 manifests
    finally:
        server.stop()


def test_a_tree_of_the_earlier_layout_is_upgraded(layouts: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "site"
    push(layouts["multi"], f"static:{root}:app:1")
    manifests = root / "v2" / "app" / "manifests"
    originals = {}
    for path in list(manifests.iterdir()):  # back to the earlier layout: no kind, and its per-export S3 files
        originals[path.name.rsplit(".", 1)[0]] = (path.name, path.read_bytes())
        path.rename(manifests / path.name.rsplit(".", 1)[0])
    (root / ".pyoci" / "s3-upload.sh").write_text("#!/bin/sh\n")
    (root / ".pyoci" / "s3-content-types.tsv").write_text("v2/app/manifests/1\tx\n")
    reader = StaticTree(root).repository("app")
    assert reader.resolve("1").media_type == mediatype.IMAGE_INDEX  # read as it is
    assert all(f.legacy for f in reader.manifests().values())
    push(layouts["single"], f"static:{root}:app:2")
    files = {p.name for p in manifests.iterdir()}
    single = f"{reader.resolve('2').digest}.oci-manifest"  # also the amd64 child of the index
    assert files == {name for name, _ in originals.values()} | {"2.oci-manifest", single}
    for name, raw in originals.values():
        assert (manifests / name).read_bytes() == raw
    assert not (root / ".pyoci" / "s3-upload.sh").exists() and not (root / ".pyoci" / "s3-content-types.tsv").exists()
    assert read_json(root / "v2" / "app" / "tags" / "list")["tags"] == ["1", "2"]


def test_a_shadowed_file_is_never_served(tmp_path: Path, layouts: dict[str, Path]) -> None:
    """After a crash between a tag's new kind and the removal of its old file, the host's order decides."""
    root = tmp_path / "site"
    push(layouts["single"], f"static:{root}:app:a")
    manifests = root / "v2" / "app" / "manifests"
    shutil.copy(manifests / "a.oci-manifest", manifests / "a.docker-manifest")
    served, shadowed = StaticTree(root).repository("app").scan()
    assert served["a"].path.name == "a.oci-manifest" and [f.path.name for f in shadowed] == ["a.docker-manifest"]
    assert KIND_ORDER.index("oci-manifest") < KIND_ORDER.index("docker-manifest")
    assert nginx_locations().count("$pyoci_tag.oci-manifest /v2/$pyoci_repo/manifests/$pyoci_tag.docker-manifest") == 1


def test_linking_a_blob_a_concurrent_export_linked_first_leaves_no_temporary_file(
    tmp_path: Path, layouts: dict[str, Path]
) -> None:
    """rename(2) of one hard link over another of the same file does nothing: the temporary name must go too."""
    root = tmp_path / "site"
    push(layouts["single"], f"static:{root}:two:1")
    push(layouts["single"], f"static:{root}:one:1")  # one's blobs are links to two's
    tree = StaticTree(root)
    blobs = root / "v2" / "one" / "blobs"
    blob = tree.repository("one").blobs()[0]
    assert blob.stat().st_nlink == 2
    descriptor = Descriptor(mediatype.LAYER_GZIP, Digest.parse(blob.name), blob.stat().st_size)
    assert tree.target("one").mount_blob(descriptor, "two")
    assert sorted(p.name for p in blobs.iterdir()) == sorted(p.name for p in (root / "v2" / "two" / "blobs").iterdir())
    assert blob.stat().st_nlink == 2


def test_repository_named_like_a_tree_folder_is_refused(tmp_path: Path, layouts: dict[str, Path]) -> None:
    proc = run_pyoci("push", "-q", str(layouts["single"]), f"static:{tmp_path}/site:app/manifests:1", check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == (
        f"pyoci: error: static:{tmp_path}/site:app/manifests: a static tree cannot hold a repository path with a "
        "component named 'manifests'"
    )


def test_concurrent_exports_keep_every_tag(layouts: dict[str, Path], tmp_path: Path) -> None:
    """Two processes exporting into one tree at once: neither loses the other's tag (issue 12, item 5)."""
    root = tmp_path / "site"
    for round_ in range(4):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "pyoci", "push", "-q", str(layouts[name]), f"static:{root}:{repo}:r{round_}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for name, repo in (("single", "one"), ("pair", "two"), ("triple", "one"))
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
    tags = [f"r{i}" for i in range(4)]
    assert read_json(root / "v2" / "two" / "tags" / "list")["tags"] == tags
    assert read_json(root / "v2" / "one" / "tags" / "list")["tags"] == tags
    assert read_json(root / "v2" / "_catalog")["repositories"] == ["one", "two"]
    for tag in tags:  # each tag of "one" holds exactly one file, of whichever export came last
        assert len(list((root / "v2" / "one" / "manifests").glob(f"{tag}.*"))) == 1
    assert not [p for p in root.rglob("*") if ".pyoci-tmp-" in p.name]


SLOW_LISTING = """
import sys, time
from pyoci.targets import static
listed = static.StaticRepository.tags
delay = float(sys.argv.pop(1))
def slow(self):
    found = listed(self)
    time.sleep(delay)
    return found
static.StaticRepository.tags = slow
from pyoci.cli.main import main
main()
"""


def test_an_export_listing_slowly_loses_no_tag(layouts: dict[str, Path], tmp_path: Path) -> None:
    """Export A reads the tags, then takes 1.5 s to write tags/list; export B adds a tag meanwhile.

    Without the listing lock, A's stale listing would overwrite B's (issue 12, item 5).
    """
    root = tmp_path / "site"
    push(layouts["single"], f"static:{root}:app:base")
    script = tmp_path / "slow.py"
    script.write_text(SLOW_LISTING)

    def export(delay: str, tag: str) -> subprocess.Popen[bytes]:
        args = [sys.executable, str(script), delay, "push", "-q", str(layouts["pair"]), f"static:{root}:app:{tag}"]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    slow = export("1.5", "a")
    deadline = time.monotonic() + 60
    while not (root / "v2/app/manifests/a.oci-index").exists() and slow.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    fast = export("0", "b")
    for proc in (slow, fast):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert read_json(root / "v2" / "app" / "tags" / "list")["tags"] == ["a", "b", "base"]
