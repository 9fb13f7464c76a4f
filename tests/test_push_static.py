"""``pyoci push`` to a static registry tree, served by nginx with the generated configuration."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import run_pyoci
from support.images import multi_layout, single_layout
from support.layouts import read_json

from pyoci import mediatype, push
from pyoci.targets.static import StaticTree

SINGLE_REF = "single"
MULTI_REF = "team/multi"


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {"single": single_layout(base / "single"), "multi": multi_layout(base / "multi")}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, layouts: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("static") / "site"
    push(layouts["single"], f"static:{root}:{SINGLE_REF}")  # tag from the source: 1.0
    multi = f"oci:{layouts['multi']}:multi"
    run_pyoci("push", "-q", multi, f"static:{root}:{MULTI_REF}:2.0", f"static:{root}:{MULTI_REF}")
    return root


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        from conftest import need_tool

        return need_tool("nginx")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    nginx = _nginx()
    prefix = tmp_path_factory.mktemp("nginx")
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temps = " ".join(f"{kind}_temp_path {prefix}/{kind};" for kind in kinds)
    for _ in range(5):
        port = _free_port()
        (prefix / "nginx.conf").write_text(
            f"master_process off; error_log {prefix}/error.log; pid {prefix}/nginx.pid;\n"
            "events { worker_connections 64; }\n"
            f"http {{ access_log off; {temps}\n"
            f"  server {{ listen 127.0.0.1:{port}; include {tree}/.pyoci/nginx.conf; }}\n}}\n"
        )
        proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        pytest.fail(f"nginx did not start: {(prefix / 'error.log').read_text()}")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def test_tree_files(tree: Path, layouts: dict[str, Path]) -> None:
    v2 = tree / "v2"
    assert read_json(v2 / "_catalog") == {"repositories": [SINGLE_REF, MULTI_REF]}
    assert read_json(v2 / SINGLE_REF / "tags" / "list") == {"name": SINGLE_REF, "tags": ["1.0"]}
    assert read_json(v2 / MULTI_REF / "tags" / "list") == {"name": MULTI_REF, "tags": ["2.0", "multi"]}
    multi_tag = (v2 / MULTI_REF / "manifests" / "2.0").read_bytes()
    digest = "sha256:" + hashlib.sha256(multi_tag).hexdigest()
    assert (v2 / MULTI_REF / "manifests" / digest).read_bytes() == multi_tag
    index = read_json(v2 / MULTI_REF / "manifests" / "2.0")
    assert index["mediaType"] == mediatype.IMAGE_INDEX and len(index["manifests"]) == 4
    for child in index["manifests"]:
        manifest = read_json(v2 / MULTI_REF / "manifests" / child["digest"])
        for blob in (manifest["config"], *manifest["layers"]):
            data = (v2 / MULTI_REF / "blobs" / blob["digest"]).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == blob["digest"]
    assert not [p for p in tree.rglob("*") if ".pyoci-tmp-" in p.name]
    types = dict(line.split("\t") for line in (tree / ".pyoci" / "s3-content-types.tsv").read_text().splitlines())
    assert types[f"v2/{MULTI_REF}/manifests/2.0"] == mediatype.IMAGE_INDEX
    assert types[f"v2/{SINGLE_REF}/manifests/1.0"] == mediatype.IMAGE_MANIFEST
    assert not [k for k in types if "/blobs/" in k]
    script = tree / ".pyoci" / "s3-upload.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert f"--content-type {mediatype.IMAGE_INDEX}" in script.read_text().replace("'", "")


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
    assert len(StaticTree(root).manifests("app")) == 3  # 1, 2, and by digest


def test_nginx_answers_head_and_get_on_every_manifest_url(tree: Path, served: str) -> None:
    static = StaticTree(tree)
    with httpx.Client(base_url=f"http://{served}") as client:
        ping = client.get("/v2/")
        assert ping.status_code == 200 and ping.json() == {}
        assert ping.headers["docker-distribution-api-version"] == "registry/2.0"
        checked = 0
        for repo in static.repositories():
            for reference, media_type, digest in static.manifests(repo):
                for method in ("HEAD", "GET"):
                    response = client.request(method, f"/v2/{repo}/manifests/{reference}")
                    assert response.status_code == 200, (method, repo, reference)
                    assert response.headers["content-type"] == media_type
                    assert response.headers["docker-content-digest"] == str(digest)
                    size = (tree / "v2" / repo / "manifests" / reference).stat().st_size
                    assert int(response.headers["content-length"]) == size
                    if method == "GET":
                        assert "sha256:" + hashlib.sha256(response.content).hexdigest() == str(digest)
                checked += 1
        assert checked == 2 + 2 + 1 + 4  # single: tag + digest; multi: 2 tags + index digest + 4 children
        catalog = client.get("/v2/_catalog")
        assert catalog.headers["content-type"] == "application/json"
        assert catalog.json()["repositories"] == [SINGLE_REF, MULTI_REF]
        assert client.get(f"/v2/{MULTI_REF}/tags/list").json()["tags"] == ["2.0", "multi"]
        blob = next((tree / "v2" / SINGLE_REF / "blobs").iterdir())
        head = client.head(f"/v2/{SINGLE_REF}/blobs/{blob.name}")
        assert head.status_code == 200 and head.headers["docker-content-digest"] == blob.name
        assert client.get(f"/v2/{SINGLE_REF}/manifests/nope").status_code == 404
        assert client.get("/.pyoci/nginx.conf").status_code == 404
        assert client.put(f"/v2/{SINGLE_REF}/manifests/1.0", content=b"{}").status_code in (403, 405)


@pytest.mark.parametrize(("repo", "tag"), [(SINGLE_REF, "1.0"), (MULTI_REF, "2.0"), (MULTI_REF, "multi")])
def test_skopeo_pulls_from_nginx(tree: Path, served: str, tmp_path: Path, repo: str, tag: str) -> None:
    from conftest import need_tool

    need_tool("skopeo")
    dest = tmp_path / "pulled"
    args = ["skopeo", "copy", "--all", "--src-tls-verify=false", f"docker://{served}/{repo}:{tag}", f"oci:{dest}:x"]
    proc = subprocess.run(args, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    expected = "sha256:" + hashlib.sha256((tree / "v2" / repo / "manifests" / tag).read_bytes()).hexdigest()
    assert read_json(dest / "index.json")["manifests"][0]["digest"] == expected


def test_upload_s3_to_moto(tree: Path) -> None:
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    import boto3

    from pyoci.targets.static import upload_s3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket="registry")
        static = StaticTree(tree)
        count = upload_s3(tree, "registry", prefix="site/", client=s3)
        files = [p for p in (tree / "v2").rglob("*") if p.is_file()]
        assert count == len(files)
        for repo in static.repositories():
            for reference, media_type, _ in static.manifests(repo):
                head = s3.head_object(Bucket="registry", Key=f"site/v2/{repo}/manifests/{reference}")
                assert head["ContentType"] == media_type
        blob = next((tree / "v2" / SINGLE_REF / "blobs").iterdir())
        head = s3.head_object(Bucket="registry", Key=f"site/v2/{SINGLE_REF}/blobs/{blob.name}")
        assert head["ContentType"] == "application/octet-stream" and head["ContentLength"] == blob.stat().st_size
        assert s3.head_object(Bucket="registry", Key="site/v2/_catalog")["ContentType"] == "application/json"
        blobs = [p for p in files if "/blobs/" in p.as_posix()]
        assert upload_s3(tree, "registry", prefix="site/", client=s3) == len(files) - len(blobs)  # blobs skipped
    finally:
        server.stop()


def test_separate_exports_hard_link_blobs_between_repositories(layouts: dict[str, Path], tmp_path: Path) -> None:
    site = tmp_path / "site"
    push(f"oci:{layouts['single']}:1.0", f"static:{site}:me/hello")
    push(f"oci:{layouts['single']}:1.0", f"static:{site}:me/other")
    first = sorted((site / "v2/me/hello/blobs").iterdir())
    second = sorted((site / "v2/me/other/blobs").iterdir())
    assert [p.name for p in first] == [p.name for p in second] and first
    assert all(a.stat().st_ino == b.stat().st_ino for a, b in zip(first, second, strict=True))
