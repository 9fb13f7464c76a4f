"""``pyoci sync static:DIR s3://BUCKET/PREFIX`` against moto's S3 server (a child process), pulled with skopeo
through a website endpoint in front of the bucket at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need_tool, run_pyoci
from support.images import platform_layouts
from support.nginx import free_port
from support.pull import assert_pulled_exactly, skopeo_pull
from support.s3 import CREDENTIALS, Website, moto_binary, start_moto

from pyoci import gc, mediatype, push
from pyoci.commands.sync import sync
from pyoci.errors import DigestMismatchError, FormatError, LayoutError
from pyoci.targets.publish import snapshot
from pyoci.targets.static import StaticTree


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("boto3")
    binary = moto_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("moto_server is required in CI (pip install 'moto[server]')")
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    server = start_moto(binary, free_port(), tmp_path_factory.mktemp("moto") / "moto.log")
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    yield server.endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def bucket(moto: str, request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto)
    name = "t-" + request.node.name.lower().replace("_", "-")[:50].strip("-")
    s3.create_bucket(Bucket=name)
    # what website hosting needs: anonymous GET of every object
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    yield s3, name


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return platform_layouts(tmp_path_factory.mktemp("layouts"))


def remote(s3: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}


def cli_sync(*args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_pyoci("sync", "--json", "-q", *args).stdout)
    return result


def test_sync_uploads_what_changed_deletes_what_went_and_pulls_work(
    tmp_path: Path, layouts: dict[str, Path], moto: str, bucket: tuple[Any, str]
) -> None:
    s3, name = bucket
    root = tmp_path / "site"
    push(layouts["pair"], f"static:{root}:app:1")
    push(layouts["single"], f"static:{root}:app:2")
    push(layouts["multi"], f"static:{root}:team/other:x")
    objects = snapshot(StaticTree(root))
    destination = f"s3://{name}/registry"

    first = cli_sync(f"static:{root}", destination, "--endpoint-url", moto)
    assert (first["uploaded"], first["copied"], first["skipped"], first["deleted"]) == (len(objects), 0, 0, 0)
    assert first["bytes"] == sum(o.size for o in objects)
    assert [a["key"] for a in first["actions"]] == [f"registry/{o.key}" for o in objects]
    held = remote(s3, name)
    assert held == {f"registry/{o.key}": o.size for o in objects}
    for obj in objects:  # every object with its content type; manifests under their URL path, no kind
        head = s3.head_object(Bucket=name, Key=f"registry/{obj.key}")
        assert head["ContentType"] == obj.content_type
    assert s3.head_object(Bucket=name, Key="registry/v2/app/manifests/1")["ContentType"] == mediatype.IMAGE_INDEX
    assert s3.head_object(Bucket=name, Key="registry/v2/app/manifests/2")["ContentType"] == mediatype.IMAGE_MANIFEST
    assert s3.head_object(Bucket=name, Key="registry/v2/_catalog")["ContentType"] == "application/json"

    site = Website(moto, name, "registry/")
    try:
        need_tool("skopeo")
        for repo, tag in (("app", "1"), ("app", "2"), ("team/other", "x")):
            skopeo_pull(site.host, repo, tag, tmp_path / f"pull-{repo.replace('/', '-')}-{tag}")
            assert_pulled_exactly(tmp_path / f"pull-{repo.replace('/', '-')}-{tag}", root, repo, tag)

        second = cli_sync(f"static:{root}", destination, "--endpoint-url", moto)
        assert (second["uploaded"], second["copied"], second["deleted"], second["bytes"]) == (0, 0, 0, 0)
        assert second["skipped"] == len(objects)

        push(layouts["triple"], f"static:{root}:app:1")  # app:1 gains armv7
        third = cli_sync(f"static:{root}", destination, "--endpoint-url", moto)
        uploaded = {a["key"] for a in third["actions"] if a["action"] == "upload"}
        copied = {a["key"]: a["source"] for a in third["actions"] if a["action"] == "copy"}
        assert len(copied) == 3 and all(k.startswith("registry/v2/app/blobs/") for k in copied)  # armv7's
        assert all(v == k.replace("/app/", "/team/other/") for k, v in copied.items())  # team/other holds them
        assert uploaded == {
            "registry/v2/app/manifests/1",
            f"registry/v2/app/manifests/{StaticTree(root).repository('app').resolve('1').digest}",
            *(f"registry/v2/app/manifests/{d}" for d in child_digests(root, "app", "1")[2:]),
        }
        assert third["deleted"] == 0
        skopeo_pull(site.host, "app", "1", tmp_path / "pull-app-1-again")
        assert_pulled_exactly(tmp_path / "pull-app-1-again", root, "app", "1")

        collected = gc(f"static:{root}", keep=["1"])
        assert collected.removed_tags == ("app:2", "team/other:x")
        fourth = cli_sync(f"static:{root}", destination, "--endpoint-url", moto)
        deleted = [a["key"] for a in fourth["actions"] if a["action"] == "delete"]
        removed = {
            f"registry/{item.path.rsplit('.', 1)[0] if '/manifests/' in item.path else item.path}"
            for item in collected.removed
        }
        gone_listing = "registry/v2/team/other/tags/list"
        assert set(deleted) == {k for k in removed if "/manifests/" in k or "/blobs/" in k} | {gone_listing}
        ranks = [2 if "/blobs/" in k else 1 if "/manifests/sha256:" in k else 0 for k in deleted]
        assert ranks == sorted(ranks)  # tags and listings, then manifests by digest, then blobs
        assert remote(s3, name) == {f"registry/{o.key}": o.size for o in snapshot(StaticTree(root))}
        assert {a["key"] for a in fourth["actions"] if a["action"] == "upload"} == {
            "registry/v2/app/tags/list",
            "registry/v2/_catalog",
        }
        skopeo_pull(site.host, "app", "1", tmp_path / "pull-after-gc")
        assert_pulled_exactly(tmp_path / "pull-after-gc", root, "app", "1")
        assert (
            subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", f"docker://{site.host}/app:2"], capture_output=True
            ).returncode
            != 0
        )
    finally:
        site.stop()


def child_digests(root: Path, repo: str, tag: str) -> list[str]:
    index = json.loads(StaticTree(root).repository(repo).manifest_file(tag).path.read_bytes())  # type: ignore[union-attr]
    return [m["digest"] for m in index["manifests"]]


class Recorder:
    """A boto3 client whose writes are timed: ``events`` holds (start, end, kind, key)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.events: list[tuple[float, float, str, str]] = []
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name not in ("put_object", "upload_fileobj", "copy", "delete_object"):
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            key = kwargs.get("Key") or args[2]
            start = time.monotonic()
            time.sleep(0.1)  # widen each write so that a wrong overlap would show
            out = method(*args, **kwargs)
            with self.lock:
                self.events.append((start, time.monotonic(), name, key))
            return out

        return timed


def phase_of(key: str, root: Path) -> str:
    relative = key.split("/", 1)[1]
    for obj in snapshot(StaticTree(root)):
        if obj.key == relative:
            return obj.phase
    raise AssertionError(key)


def test_sync_goes_children_first_and_deletes_parents_first(
    tmp_path: Path, layouts: dict[str, Path], moto: str, bucket: tuple[Any, str]
) -> None:
    from pyoci.commands.sync import s3_client

    s3, name = bucket
    root = tmp_path / "site"
    push(layouts["multi"], [f"static:{root}:app:1", f"static:{root}:app:2"])
    push(layouts["single"], f"static:{root}:app:3")
    recorder = Recorder(s3_client(moto, 4))
    result = sync(f"static:{root}", f"s3://{name}/p", client=recorder, jobs=4)
    assert result.count("upload") == len(recorder.events) == len(snapshot(StaticTree(root)))
    phases = ["blob", "manifest", "index", "tag", "tags-list", "catalog"]
    spans = {}
    for start, end, _, key in recorder.events:
        phase = phase_of(key, root)
        first, last = spans.get(phase, (start, end))
        spans[phase] = (min(first, start), max(last, end))
    for earlier, later in zip(phases, phases[1:], strict=False):
        assert spans[earlier][1] <= spans[later][0], (earlier, later)  # each phase ends before the next starts
    blob_starts = sorted(start for start, _, _, key in recorder.events if "/blobs/" in key)
    assert blob_starts[3] < min(end for _, end, _, key in recorder.events if "/blobs/" in key)  # 4 at once

    gc(f"static:{root}", keep=["3"])
    recorder.events.clear()
    result = sync(f"static:{root}", f"s3://{name}/p", client=recorder, jobs=4)
    deletes = [(start, end, key) for start, end, kind, key in recorder.events if kind == "delete_object"]
    # tags 1 and 2; the index and 3 manifests (amd64's is tag 3's); 9 blobs (amd64's 3 stay)
    assert len(deletes) == result.count("delete") == 2 + 4 + 9
    uploads_end = max(end for _, end, kind, _ in recorder.events if kind != "delete_object")
    tags = [d for d in deletes if d[2].endswith(("/manifests/1", "/manifests/2"))]
    manifests = [d for d in deletes if "/manifests/sha256:" in d[2]]
    blobs = [d for d in deletes if "/blobs/" in d[2]]
    assert uploads_end <= min(d[0] for d in deletes)  # the new listings are up before anything goes
    assert max(d[1] for d in tags) <= min(d[0] for d in manifests)
    assert max(d[1] for d in manifests) <= min(d[0] for d in blobs)


def test_a_blob_another_repository_holds_is_copied_in_the_bucket(
    tmp_path: Path, layouts: dict[str, Path], moto: str, bucket: tuple[Any, str]
) -> None:
    s3, name = bucket
    root = tmp_path / "site"
    push(layouts["single"], f"static:{root}:app:1")
    sync(f"static:{root}", f"s3://{name}", endpoint_url=moto)
    push(layouts["single"], f"static:{root}:copy:1")
    result = sync(f"static:{root}", f"s3://{name}", endpoint_url=moto)
    copies = [a for a in result.actions if a.action == "copy"]
    assert sorted((a.key.split("/")[-1], a.source) for a in copies) == sorted(
        (p.name, f"v2/app/blobs/{p.name}") for p in (root / "v2/copy/blobs").iterdir()
    )
    assert result.bytes_uploaded == sum(a.size for a in result.actions if a.action == "upload")
    assert all("/blobs/" not in a.key for a in result.actions if a.action == "upload")
    for copy in copies:
        head = s3.head_object(Bucket=name, Key=copy.key)
        assert head["ContentType"] == "application/octet-stream" and head["ContentLength"] == copy.size


def test_dry_run_changes_nothing(tmp_path: Path, layouts: dict[str, Path], moto: str, bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    root = tmp_path / "site"
    push(layouts["pair"], f"static:{root}:app:1")
    s3.put_object(Bucket=name, Key="v2/stale/blobs/sha256:" + "0" * 64, Body=b"x")
    s3.put_object(Bucket=name, Key="outside/keep-me", Body=b"x")
    dry = cli_sync(f"static:{root}", f"s3://{name}", "--endpoint-url", moto, "--dry-run")
    assert dry["dry_run"] and dry["uploaded"] == len(snapshot(StaticTree(root))) and dry["deleted"] == 1
    assert dry["actions"][-1] == {"action": "delete", "key": "v2/stale/blobs/sha256:" + "0" * 64, "size": 0}
    assert remote(s3, name) == {"v2/stale/blobs/sha256:" + "0" * 64: 1, "outside/keep-me": 1}
    text = run_pyoci("sync", "-n", f"static:{root}", f"s3://{name}", "--endpoint-url", moto)
    lines = text.stdout.decode().splitlines()
    assert lines[0].startswith("upload\t") and lines[-1] == f"delete\t0\tv2/stale/blobs/sha256:{'0' * 64}"
    assert "would upload" in text.stderr.decode()
    sync(f"static:{root}", f"s3://{name}", endpoint_url=moto)
    assert "outside/keep-me" in remote(s3, name) and "v2/stale/blobs/sha256:" + "0" * 64 not in remote(s3, name)


def test_a_corrupt_blob_is_never_published(
    tmp_path: Path, layouts: dict[str, Path], moto: str, bucket: tuple[Any, str]
) -> None:
    s3, name = bucket
    root = tmp_path / "site"
    push(layouts["single"], f"static:{root}:app:1")
    blob = max((root / "v2/app/blobs").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match=f"^{blob}: digest: expected {blob.name}, got sha256:"):
        sync(f"static:{root}", f"s3://{name}", endpoint_url=moto, jobs=1)
    held = remote(s3, name)
    assert f"v2/app/blobs/{blob.name}" not in held
    assert not [k for k in held if "/manifests/" in k or k.endswith(("tags/list", "_catalog"))]  # no parent went up


def test_errors(tmp_path: Path, layouts: dict[str, Path], moto: str) -> None:
    root = tmp_path / "site"
    push(layouts["single"], f"static:{root}:app:1")
    proc = run_pyoci("sync", f"static:{root}", "s3://no-such-bucket", "--endpoint-url", moto, check=False)
    assert (proc.returncode, proc.stderr.decode()) == (1, "pyoci: error: s3://no-such-bucket: no such bucket\n")
    with pytest.raises(FormatError, match="sync publishes a whole tree"):
        sync(f"static:{root}:app", "s3://bucket", endpoint_url=moto)
    with pytest.raises(FormatError, match="sync writes s3:// references, not oci:"):
        sync(f"static:{root}", f"oci:{tmp_path}", endpoint_url=moto)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    args = [sys.executable, "-m", "pyoci", "sync", f"static:{root}", "s3://some-bucket", "--endpoint-url", moto]
    proc = subprocess.run(args, capture_output=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("pyoci: error: s3://some-bucket: no credentials")
    with pytest.raises(LayoutError, match="not a static registry tree"):
        sync(f"static:{tmp_path}/none", "s3://bucket", endpoint_url=moto)
