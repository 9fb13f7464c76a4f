"""``pyoci copy`` between every transport, against the real distribution registry, with skopeo as the oracle."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, PASSWORD, USER, need_tool, pull, run_pyoci, validate_layout
from support.fault_proxy import FaultProxy
from support.layouts import blob, document, entries, entry, snapshot
from support.registry import Registry, start_registry
from support.token_issuer import TokenIssuer

from pyoci import RegistryOptions, convert, copy, merge, push
from pyoci.errors import AuthError, FormatError, LayoutError, PyociError, RegistryError
from pyoci.mediatype import IMAGE_INDEX, IMAGE_MANIFEST

FAST = RegistryOptions(retry_times=1, retry_delay=0.01)
# the multi layout's four platforms: 4 x (config + 2 layers)
BLOBS = 12


@pytest.fixture(scope="module")
def second_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    need_tool("docker-registry")
    reg = start_registry(tmp_path_factory.mktemp("second"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def pushed(registry: Registry, layouts: dict[str, Path]) -> str:
    """The four-platform image in the registry as ``copy/multi:1``; returns its index digest."""
    return str(push(f"oci:{layouts['multi']}:multi", f"{registry.host}/copy/multi:1", options=FAST).digest)


def skopeo_raw(reference: str) -> bytes:
    need_tool("skopeo")
    args = ["skopeo", "inspect", "--raw", "--tls-verify=false", reference]
    proc = subprocess.run(args, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_registry_to_layout_then_verify(registry: Registry, pushed: str, tmp_path: Path) -> None:
    out = tmp_path / "copied"
    result = copy(f"docker://{registry.host}/copy/multi:1", f"oci:{out}:1", options=FAST)
    assert str(result.digest) == pushed and result.media_type == IMAGE_INDEX
    assert (result.stats.uploaded, result.stats.manifests) == (BLOBS, 5)
    assert [str(p) for p in result.platforms] == ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/386"]
    assert entry(out, "1")["digest"] == pushed
    validate_layout(out)


def test_registry_to_registry_byte_exact_and_mounts(
    registry: Registry, second_registry: Registry, pushed: str, tmp_path: Path
) -> None:
    other = copy(f"docker://{registry.host}/copy/multi:1", f"docker://{second_registry.host}/mirror:1", options=FAST)
    assert str(other.digest) == pushed and other.stats.uploaded == BLOBS
    assert skopeo_raw(f"docker://{second_registry.host}/mirror:1") == skopeo_raw(f"docker://{registry.host}/copy/multi:1")
    assert pull(f"{second_registry.host}/mirror:1", tmp_path / "pulled")["digest"] == pushed
    # same registry, another repository: every blob mounted, none sent
    same = copy(f"docker://{registry.host}/copy/multi:1", f"docker://{registry.host}/copy/other:2", options=FAST)
    assert (same.stats.uploaded, same.stats.mounted, same.stats.manifests) == (0, BLOBS, 5)
    # copied again: the index is there under the tag, nothing is sent or even asked for below it
    again = copy(f"docker://{registry.host}/copy/multi:1", f"docker://{registry.host}/copy/other:2", options=FAST)
    stats = again.stats
    assert (stats.uploaded, stats.mounted, stats.skipped, stats.manifests, stats.manifests_skipped) == (0, 0, 0, 0, 1)


def test_platform_selection(registry: Registry, pushed: str, layouts: dict[str, Path], tmp_path: Path) -> None:
    index = document(layouts["multi"], "multi", IMAGE_INDEX)
    arm64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    one = copy(f"docker://{registry.host}/copy/multi:1", f"oci:{tmp_path / 'one'}:a", platforms=["linux/arm64"])
    assert str(one.digest) == arm64["digest"] and one.media_type == IMAGE_MANIFEST
    assert entry(tmp_path / "one", "a")["platform"]["architecture"] == "arm64"
    two = copy(f"oci:{layouts['multi']}:multi", f"oci:{tmp_path / 'two'}:b", platforms=["linux/386", "linux/amd64"])
    narrowed = document(tmp_path / "two", "b", IMAGE_INDEX)
    assert [m["platform"]["architecture"] for m in narrowed["manifests"]] == ["386", "amd64"]
    assert str(two.digest) != pushed
    validate_layout(tmp_path / "two")
    with pytest.raises(FormatError, match=r"no image for platform linux/s390x \(it holds: linux/amd64, "):
        copy(f"oci:{layouts['multi']}:multi", f"oci:{tmp_path / 'none'}:c", platforms=["linux/s390x"])
    assert not (tmp_path / "none").exists()


def test_registry_to_static_tree_and_back(registry: Registry, pushed: str, tmp_path: Path) -> None:
    tree = tmp_path / "site"
    result = copy(f"docker://{registry.host}/copy/multi:1", f"static:{tree}:pub/app:1", options=FAST)
    assert str(result.digest) == pushed
    assert (tree / "v2/pub/app/manifests/1.oci-index").read_bytes() == skopeo_raw(f"docker://{registry.host}/copy/multi:1")
    back = copy(f"static:{tree}:pub/app:1", f"oci:{tmp_path / 'back'}:1")
    assert str(back.digest) == pushed and back.stats.uploaded == BLOBS
    validate_layout(tmp_path / "back")


def test_layout_to_docker_archive_read_by_skopeo(layouts: dict[str, Path], tmp_path: Path) -> None:
    need_tool("skopeo")
    archive = tmp_path / "app.tar"
    multi = f"oci:{layouts['multi']}:multi"
    result = copy(multi, f"docker-archive:{archive}:example.com/app:1", platforms=["linux/arm/v7"])
    assert [str(p) for p in result.platforms] == ["linux/arm/v7"]
    proc = subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    inspected = json.loads(proc.stdout)
    source = document(layouts["multi"], "multi", IMAGE_INDEX)
    arm = next(m for m in source["manifests"] if m["platform"]["architecture"] == "arm")
    manifest = json.loads(blob(layouts["multi"], arm["digest"]))
    config = json.loads(blob(layouts["multi"], manifest["config"]["digest"]))
    assert inspected["Layers"] == config["rootfs"]["diff_ids"]  # skopeo lists the uncompressed layer digests
    assert inspected["Architecture"] == "arm" and inspected["RepoTags"] == []
    # skopeo can copy it, and pyoci converts it back to the same config digest (the image ID)
    out = tmp_path / "skopeo-oci"
    args = ["skopeo", "copy", f"docker-archive:{archive}", f"oci:{out}:x"]
    proc = subprocess.run(args, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    again = convert(str(archive), f"oci:{tmp_path / 'again'}:1").images[0]
    assert str(again.config.digest) == manifest["config"]["digest"]
    assert again.source.repo_tags == ("example.com/app:1",)
    # the same copy twice writes the same bytes
    second = tmp_path / "app2.tar"
    copy(multi, f"docker-archive:{second}:example.com/app:1", platforms=["linux/arm/v7"])
    assert second.read_bytes() == archive.read_bytes()


def test_a_full_disk_under_a_docker_archive_is_not_blamed_on_the_layer(
    layouts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyoci.targets import archive_files

    class Full(io.BufferedWriter):
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(archive_files, "open", lambda path, mode: Full(io.FileIO(path, mode)), raising=False)
    archive = tmp_path / "app.tar"
    with pytest.raises(LayoutError) as caught:
        copy(f"oci:{layouts['single']}:1.0", f"docker-archive:{archive}:example.com/app:1")
    assert str(caught.value) == f"docker-archive:{archive}: cannot write: No space left on device"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_source_that_cannot_be_read_is_blamed_on_the_source_not_the_docker_archive(
    layouts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyoci.streams import VerifyingReader

    layer = document(layouts["single"], "1.0", IMAGE_MANIFEST)["layers"][0]["digest"]
    read = VerifyingReader.read

    def failing(self: VerifyingReader, size: int = -1) -> bytes:
        if str(self._expected) == layer:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return read(self, size)

    monkeypatch.setattr(VerifyingReader, "read", failing)
    with pytest.raises(LayoutError) as caught:
        copy(f"oci:{layouts['single']}:1.0", f"docker-archive:{tmp_path / 'app.tar'}:example.com/app:1")
    assert str(caught.value).startswith(f"{layouts['single']}: layer sha256:")
    assert str(caught.value).endswith(": cannot read: Input/output error")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_oci_archive_round_trip_byte_exact(layouts: dict[str, Path], tmp_path: Path) -> None:
    first = tmp_path / "a.tar"
    result = run_pyoci("copy", f"oci:{layouts['multi']}:multi", f"oci-archive:{first}:v1")
    digest = entry(layouts["multi"], "multi")["digest"]
    assert result.stdout.decode().strip() == digest
    copy(f"oci-archive:{first}:v1", f"oci:{tmp_path / 'back'}:v1")
    assert entry(tmp_path / "back", "v1")["digest"] == digest
    validate_layout(tmp_path / "back")
    second = tmp_path / "b.tar"
    copy(f"oci:{tmp_path / 'back'}:v1", f"oci-archive:{second}:v1")
    assert second.read_bytes() == first.read_bytes()


def test_docker_archive_source_with_compression(tmp_path: Path) -> None:
    result = copy(str(FIXTURES / "hello-amd64.tar"), f"oci:{tmp_path / 'z'}:1", layer_options=None)
    validate_layout(tmp_path / "z")
    zstd = run_pyoci("copy", "--compression", "zstd", str(FIXTURES / "hello-amd64.tar"), f"oci:{tmp_path / 'zz'}:1")
    manifest = document(tmp_path / "zz", "1")
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    assert zstd.stdout.decode().strip() != str(result.digest)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["docker://{host}/copy/absent:1"], "MANIFEST_UNKNOWN"),
        (["ftp://x/y"], "unknown transport ftp://"),
        (["oci:{multi}:multi", "--platform", "linux/mips"], "no image for platform linux/mips"),
        (["oci:{multi}:nope"], "no image tagged 'nope'"),
    ],
)
def test_errors_are_one_line_and_leave_the_destination(
    registry: Registry, layouts: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "dest"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{out}:keep")
    before = snapshot(out)
    source, *options = (a.format(host=registry.host, multi=layouts["multi"]) for a in args)
    proc = run_pyoci("copy", "--retry-times", "0", *options, source, f"oci:{out}:new", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and err.startswith("pyoci: error: ") and message in err, err
    assert snapshot(out) == before


def test_destination_transports_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="use 'pyoci sync'"):
        copy(str(FIXTURES / "hello-amd64.tar"), "s3://bucket/x")
    with pytest.raises(FormatError, match="name a transport"):
        copy(str(FIXTURES / "hello-amd64.tar"), str(tmp_path / "bare"))


def test_registry_error_carries_status_and_codes(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as caught:
        copy(f"docker://{registry.host}/copy/absent:1", f"oci:{tmp_path / 'x'}:1", options=FAST)
    assert caught.value.status == 404 and caught.value.codes == ("MANIFEST_UNKNOWN",)


def test_inspect_a_registry_image_as_skopeo_does(registry: Registry, pushed: str) -> None:
    reference = f"docker://{registry.host}/copy/multi:1"
    raw = run_pyoci("inspect", "--raw", reference).stdout
    assert raw == skopeo_raw(reference)
    summary = json.loads(run_pyoci("inspect", "--json", reference).stdout)
    [image] = summary["images"]
    assert image["tags"] == ["1"] and image["descriptor"]["digest"] == pushed
    assert [p["platform"]["architecture"] for p in image["platforms"]] == ["amd64", "arm64", "arm", "386"]
    assert summary["kind"] == "docker"


def test_merge_in_the_registry_downloads_no_layer(registry: Registry, tmp_path: Path) -> None:
    """Four per-arch jobs push their image to a tag each; a last job makes the multi-arch tag in the registry."""
    singles = {}
    for arch in ("amd64", "arm64", "armv7", "386"):
        result = push(str(FIXTURES / f"hello-{arch}.tar"), f"{registry.host}/ci/app:{arch}", options=FAST)
        singles[arch] = str(result.digest)
    proxy = FaultProxy(registry.port)
    try:
        sources = [f"docker://{proxy.host}/ci/app:{arch}" for arch in singles]
        result = merge(sources, f"docker://{proxy.host}/ci/app:1.0", registry=FAST)
        blob_gets = [(m, path) for m, path, _ in proxy.log if m == "GET" and "/blobs/" in path]
        config_digests = set()
        for arch in singles:
            manifest = json.loads(skopeo_raw(f"docker://{registry.host}/ci/app:{arch}"))
            config_digests.add(manifest["config"]["digest"])
        # only configs are read (to learn each platform); no layer is downloaded
        assert {path.rsplit("/", 1)[1] for _, path in blob_gets} <= config_digests
        assert not [1 for m, path, _ in proxy.log if m in ("PUT", "PATCH") and "/blobs/" in path]
    finally:
        proxy.stop()
    assert result.index is not None and [str(d.digest) for d in result.manifests] == list(singles.values())
    raw = skopeo_raw(f"docker://{registry.host}/ci/app:1.0")
    index = json.loads(raw)
    assert index["mediaType"] == IMAGE_INDEX and [m["digest"] for m in index["manifests"]] == list(singles.values())
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64", "arm", "386"]
    assert str(result.index.digest) == "sha256:" + hashlib.sha256(raw).hexdigest()
    pulled = pull(f"{registry.host}/ci/app:1.0", tmp_path / "pulled")
    assert pulled["digest"] == str(result.index.digest)
    validate_layout(tmp_path / "pulled")
    # a fifth job adds a platform to the tag: appended, the others kept
    again = merge([str(FIXTURES / "hello-amd64.tar")], f"docker://{registry.host}/ci/app:1.0", registry=FAST)
    assert [str(d.digest) for d in again.manifests] == list(singles.values())  # the very same amd64: no change


class Recorder:
    """A Progress that records what it is told; forks report their bytes to it too."""

    def __init__(self, parent: Recorder | None = None) -> None:
        self.parent = parent
        self.started: list[tuple[str, int]] = []
        self.count = 0
        self.lock = threading.Lock()

    def start(self, name: str, total: int) -> None:
        self.started.append((name, total))

    def advance(self, count: int) -> None:
        with self.lock:
            self.count += count
        if self.parent is not None:
            self.parent.advance(count)

    def finish(self) -> None:
        pass

    def fork(self) -> Recorder:
        return Recorder(self)


def test_parallel_transfers_give_the_same_image(registry: Registry, second_registry: Registry, pushed: str) -> None:
    options = RegistryOptions(retry_times=1, retry_delay=0.01, jobs=8)
    progress = Recorder()
    source, destination = f"docker://{registry.host}/copy/multi:1", f"docker://{second_registry.host}/jobs:8"
    result = copy(source, destination, options=options, progress=progress)
    assert str(result.digest) == pushed and result.stats.uploaded == BLOBS
    total = result.stats.bytes_uploaded
    assert progress.started == [(f"{BLOBS} blobs", total)] and progress.count == total  # the total bar
    assert skopeo_raw(f"docker://{second_registry.host}/jobs:8") == skopeo_raw(f"docker://{registry.host}/copy/multi:1")
    with pytest.raises(FormatError, match="--jobs 0: expected 1 to 32"):
        RegistryOptions(jobs=0)


def signed_layout(path: Path) -> tuple[str, str, str]:
    """hello-amd64 tagged 1.0, a signature tagged cosign-style and an SBOM known only by its subject.

    Returns the digests of the image, the signature and the SBOM.
    """
    from pyoci.descriptor import REF_NAME, Descriptor
    from pyoci.jsonio import dump_json
    from pyoci.layout.store import ImageLayout

    image = convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{path}:1.0").images[0].manifest
    layout = ImageLayout.open(path)
    empty = layout.put_blob(b"{}", "application/vnd.oci.empty.v1+json")
    subject = Descriptor(image.media_type, image.digest, image.size)
    made = []
    for kind, payload in (("signature", b"signed"), ("sbom", b'{"spdxVersion":"SPDX-2.3"}')):
        content = layout.put_blob(payload, f"application/vnd.example.{kind}")
        doc = {
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "artifactType": f"application/vnd.example.{kind}",
            "config": empty.to_json(),
            "layers": [content.to_json()],
            "subject": subject.to_json(),
        }
        made.append(layout.put_blob(dump_json(doc), IMAGE_MANIFEST))
    signature, sbom = made
    tag = f"sha256-{image.digest.encoded}.sig"
    layout.update_index(lambda current: [*current, signature.with_annotations({REF_NAME: tag}), sbom])
    return str(image.digest), str(signature.digest), str(sbom.digest)


def test_referrers_come_along_only_when_asked(registry: Registry, tmp_path: Path) -> None:
    image, signature, sbom = signed_layout(tmp_path / "signed")
    sig_tag = f"sha256-{image.split(':')[1]}.sig"
    bare = copy(f"oci:{tmp_path / 'signed'}:1.0", f"oci:{tmp_path / 'bare'}:1.0")
    assert str(bare.digest) == image and {e["digest"] for e in entries(tmp_path / "bare")} == {image}
    # layout to layout: the tagged signature under its tag, the SBOM as an untagged entry
    result = copy(f"oci:{tmp_path / 'signed'}:1.0", f"oci:{tmp_path / 'with'}:1.0", referrers=True)
    assert str(result.digest) == image
    found = {e["digest"]: e.get("annotations", {}) for e in entries(tmp_path / "with")}
    assert found[signature] == {"org.opencontainers.image.ref.name": sig_tag} and found[sbom] == {}
    validate_layout(tmp_path / "with")
    # to a registry: both, the SBOM by digest
    pushed = run_pyoci("copy", "--referrers", f"oci:{tmp_path / 'signed'}:1.0", f"docker://{registry.host}/signed:1.0")
    assert pushed.stdout.decode().strip() == image
    assert json.loads(skopeo_raw(f"docker://{registry.host}/signed:{sig_tag}"))["subject"]["digest"] == image
    assert json.loads(skopeo_raw(f"docker://{registry.host}/signed@{sbom}"))["subject"]["digest"] == image
    # back from the registry (distribution 2.8 has no referrers API): the tag schema brings the signature
    back = copy(f"docker://{registry.host}/signed:1.0", f"oci:{tmp_path / 'back'}:1.0", referrers=True, options=FAST)
    assert {e["digest"] for e in entries(tmp_path / "back")} == {image, signature}
    assert back.stats.manifests == 2
    with pytest.raises(FormatError, match="drop --referrers"):
        copy(f"oci:{tmp_path / 'signed'}:1.0", f"docker-archive:{tmp_path / 'x.tar'}", referrers=True)



def test_copy_from_a_token_registry_with_pull_scope_tokens(
    token_registry: tuple[Registry, TokenIssuer], registry: Registry, layouts: dict[str, Path], tmp_path: Path
) -> None:
    """Registry to registry, the source behind token auth: its tokens ask for pull only."""
    source, issuer = token_registry
    options = RegistryOptions(creds=f"{USER}:{PASSWORD}", retry_delay=0.01)
    pushed = push(f"oci:{layouts['multi']}:multi", f"{source.host}/tok/src:1", options=options)
    issuer.requests.clear()
    result = copy(f"docker://{source.host}/tok/src:1", f"docker://{registry.host}/from-token:1", options=options)
    assert result.digest == pushed.digest and result.stats.uploaded == BLOBS
    scopes = {scope for r in issuer.requests if not r.get("refused") for scope in r["scopes"]}
    assert scopes == {"repository:tok/src:pull"}
    assert pull(f"{registry.host}/from-token:1", tmp_path / "pulled")["digest"] == str(pushed.digest)
    anonymous = RegistryOptions(retry_times=0, environ={})
    with pytest.raises(AuthError):
        copy(f"docker://{source.host}/tok/src:1", f"oci:{tmp_path / 'x'}:1", options=anonymous)
    assert not (tmp_path / "x").exists()


def test_a_manifest_named_by_sha512_is_refused_by_a_registry_before_its_tag(registry: Registry, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{layout}:1.0")
    listed = entry(layout)
    raw = blob(layout, listed["digest"])
    sha512 = "sha512:" + hashlib.sha512(raw).hexdigest()
    (layout / "blobs" / "sha512").mkdir()
    (layout / "blobs" / "sha512" / sha512.partition(":")[2]).write_bytes(raw)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{**listed, "digest": sha512}]}))
    copy(f"oci:{layout}:1.0", f"oci:{tmp_path / 'copy'}:1.0")  # a layout keeps it as it is
    assert entry(tmp_path / "copy")["digest"] == sha512
    target = f"docker://{registry.host}/sha512/app:1.0"
    with pytest.raises(RegistryError, match=rf"manifest {sha512}: registries name manifests by sha256; copy it into"):
        copy(f"oci:{layout}:1.0", target, options=FAST)
    with pytest.raises(RegistryError, match="MANIFEST_UNKNOWN|manifest unknown"):
        copy(target, f"oci:{tmp_path / 'back'}:1.0", options=FAST)


def test_a_failed_copy_leaves_no_directory_behind(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar"
    broken.write_bytes((FIXTURES / "hello-amd64.tar").read_bytes()[:20_000])
    for destination in (f"oci:{tmp_path / 'new' / 'deep'}:t", f"docker-archive:{tmp_path / 'out' / 'x.tar'}"):
        with pytest.raises(PyociError):
            copy(str(broken), destination)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tar"]
