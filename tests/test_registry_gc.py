"""Retention gc of a registry repository against the real distribution registry (``docker-registry``, deletes
enabled and disabled), followed by the registry's own ``garbage-collect`` for blobs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import need_tool, run_pyoci
from support.dated_images import dated_layout
from support.pull import skopeo_pull
from support.registry import Registry, start_registry

from pyoci import gc, push
from pyoci.errors import FormatError, RegistryError
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import IMAGE_INDEX, IMAGE_MANIFEST
from pyoci.walk import walk

VERSIONS = [f"v{i}" for i in range(1, 6)]
ACCEPT = {"Accept": f"{IMAGE_INDEX}, {IMAGE_MANIFEST}"}


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dated")
    return {v: dated_layout(base / v, v, f"2024-0{v[1]}-15T12:00:00Z") for v in VERSIONS}


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[tuple[Registry, Path]]:
    need_tool("docker-registry")
    registry = start_registry(tmp_path / "registry")
    yield registry, tmp_path / "registry"
    registry.stop()


def documents(layout: Path, tag: str) -> tuple[str, set[str], set[str]]:
    """``(root digest, {manifest and index digests}, {blob digests})`` of a layout's tag."""
    store = ImageLayout.open(layout)
    [root] = store.entries(tag)
    nodes = list(walk(store, [root]))
    return (
        str(root.digest),
        {str(n.digest) for n in nodes if n.raw is not None},
        {str(n.digest) for n in nodes if n.raw is None},
    )


def present(host: str, kind: str, digest: str) -> bool:
    response = httpx.head(f"http://{host}/v2/app/{kind}/{digest}", headers=ACCEPT)
    assert response.status_code in (200, 404), response
    return response.status_code == 200


def test_registry_retention_deletes_exactly_what_only_removed_tags_reach(
    own_registry: tuple[Registry, Path], dated: dict[str, Path], tmp_path: Path
) -> None:
    registry, workdir = own_registry
    host = registry.host
    for version in ["v3", "v1", "v5", "v2", "v4"]:
        push(f"oci:{dated[version]}:{version}", f"docker://{host}/app:{version}")
    push(f"oci:{dated['v2']}:v2", f"docker://{host}/app:stable")  # an older image under a kept name
    images = {v: documents(dated[v], v) for v in VERSIONS}

    dry = json.loads(
        run_pyoci("gc", "-n", "--json", "--keep-last", "2", "--keep", "stable", f"docker://{host}/app").stdout
    )
    assert dry["kept_tags"] == ["app:stable", "app:v4", "app:v5"]
    assert dry["removed_tags"] == ["app:v1", "app:v2", "app:v3"]
    doomed = images["v1"][1] | images["v3"][1]
    assert {item["path"] for item in dry["removed"] if item["kind"] != "tag"} == {f"app@{d}" for d in doomed}
    assert [item["path"] for item in dry["removed"] if item["kind"] == "tag"] == ["app:v2"]  # its image is stable's
    assert dry["notes"] == [
        f"docker://{host}/app:v2: a kept tag holds the same image: this tag goes only where the registry deletes "
        "a tag alone (distribution 2.8 does not)"
    ]
    order = [item["path"].split("@")[1] for item in dry["removed"] if item["kind"] != "tag"]
    assert order.index(images["v1"][0]) < min(order.index(d) for d in images["v1"][1] - {images["v1"][0]})
    assert all(present(host, "manifests", d) for d in doomed)  # a dry run deletes nothing
    summary = run_pyoci("gc", "-n", "--keep-last", "2", "--keep", "stable", f"docker://{host}/app").stderr
    assert f"would remove {len(doomed)} manifests (3 tags, 3 kept), " in summary.decode().splitlines()[-1]
    with pytest.raises(FormatError, match=rf"^docker://{host}/app: --keep 'relase-\*' matched no tag and the rules"):
        gc(f"docker://{host}/app", keep=["relase-*"])
    assert all(present(host, "manifests", d) for d in doomed)
    noted = gc(f"docker://{host}/app", keep=["stable", "nothing-*"], dry_run=True)
    assert noted.notes[0] == "--keep 'nothing-*' matched no tag" and noted.kept_tags == ("app:stable",)

    result = gc(f"docker://{host}/app", keep=["stable"], keep_last=2)
    assert [item.path for item in result.removed] == [item["path"] for item in dry["removed"] if item["kind"] != "tag"]
    assert result.removed_tags == ("app:v1", "app:v3")
    assert not any(present(host, "manifests", d) for d in doomed)
    for version in ("v2", "v4", "v5"):  # kept images whole, children included
        assert all(present(host, "manifests", d) for d in images[version][1])
        assert all(present(host, "blobs", d) for d in images[version][2])
    tags = httpx.get(f"http://{host}/v2/app/tags/list").json()["tags"]
    # distribution 2.8 cannot delete a tag alone: v2 stays, and a note says why
    assert sorted(tags) == ["stable", "v2", "v4", "v5"]
    assert result.notes == (
        f"docker://{host}/app:v2: not removed: a kept tag holds the same image, and the registry refused to delete "
        f"the tag alone ({host}: app: DELETE manifest v2: HTTP 400 DIGEST_INVALID: provided digest did not match "
        "uploaded content)",
    )
    need_tool("skopeo")
    skopeo_pull(host, "app", "v5", tmp_path / "pulled")

    # the registry's own gc then frees the blobs only the deleted manifests used
    registry.stop()
    proc = subprocess.run(
        ["docker-registry", "garbage-collect", str(workdir / "config.yml")], capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    restarted = start_registry(workdir)
    try:
        only_removed = (images["v1"][2] | images["v3"][2]) - images["v2"][2] - images["v4"][2] - images["v5"][2]
        assert len(only_removed) == 2 * 2 * 2  # v1 and v3: 2 platforms x (config + app layer)
        assert not any(present(restarted.host, "blobs", d) for d in only_removed)
        assert all(present(restarted.host, "blobs", d) for v in ("v2", "v4", "v5") for d in images[v][2])
    finally:
        restarted.stop()


def test_a_registry_without_deletes_refuses_in_one_line(tmp_path: Path, dated: dict[str, Path]) -> None:
    need_tool("docker-registry")
    registry = start_registry(tmp_path / "registry", delete=False)
    try:
        for version in ("v1", "v2"):
            push(f"oci:{dated[version]}:{version}", f"docker://{registry.host}/app:{version}")
        proc = run_pyoci("gc", "--keep-last", "1", f"docker://{registry.host}/app", check=False)
        root = documents(dated["v1"], "v1")[0]
        assert proc.returncode == 1
        assert proc.stderr.decode() == (
            f"pyoci: error: {registry.host}: app: DELETE manifest {root}: HTTP 405 UNSUPPORTED: "
            "The operation is unsupported.\n"
        )
        with pytest.raises(RegistryError) as caught:
            gc(f"docker://{registry.host}/app", keep_last=1)
        assert caught.value.status == 405 and caught.value.codes == ("UNSUPPORTED",)
    finally:
        registry.stop()
