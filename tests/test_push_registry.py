"""``pyoci push`` to the real CNCF distribution registry, pulled back with skopeo as the oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, PASSWORD, USER, need_tool, pull, run_pyoci
from support.fault_proxy import Fault, FaultProxy
from support.layouts import entry, read_json
from support.registry import Registry, start_registry
from support.tls import make_certificates
from support.token_issuer import TokenIssuer

import pyoci
from pyoci import RegistryOptions, push
from pyoci.errors import AuthError, FormatError, RegistryError
from pyoci.targets.auth import find_credentials, parse_challenges

FAST = RegistryOptions(retry_times=3, retry_delay=0.01)


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(registry.port)
    yield fault_proxy
    fault_proxy.stop()


def test_cli_pushes_docker_archive_and_prints_registry_digest(registry: Registry, tmp_path: Path) -> None:
    digestfile = tmp_path / "digest"
    proc = run_pyoci(
        "push", "-q", "--digestfile", str(digestfile), str(FIXTURES / "hello-amd64.tar"), f"docker://{registry.host}/cli"
    )
    printed = proc.stdout.decode().strip()
    assert digestfile.read_text() == printed
    # no tag given: the archive's own tag (RepoTags example.com/hello:1.0)
    pulled = pull(f"{registry.host}/cli:1.0", tmp_path / "pulled")
    assert pulled["digest"] == printed


def test_multi_arch_push_and_skip_existing(registry: Registry, layouts: dict[str, Path], tmp_path: Path) -> None:
    multi = layouts["multi"]
    first = push(f"oci:{multi}:multi", f"{registry.host}/multi", options=FAST)
    assert str(first.digest) == entry(multi, "multi")["digest"]
    assert first.media_type == pyoci.mediatype.IMAGE_INDEX
    counts = first.destinations[0]
    assert counts.reference == f"docker://{registry.host}/multi:multi"
    assert (counts.uploaded, counts.skipped, counts.manifests) == (12, 0, 5)  # 4 x (config + 2 layers); 4 + index
    pulled = pull(f"{registry.host}/multi:multi", tmp_path / "pulled")
    assert pulled["digest"] == str(first.digest)
    pulled = read_json(tmp_path / "pulled" / "blobs" / "sha256" / str(first.digest).split(":")[1])
    assert len(pulled["manifests"]) == 4
    # second push: the index is there under the tag, so nothing below it is even asked about
    again = push(f"oci:{multi}:multi", f"docker://{registry.host}/multi:multi", options=FAST)
    assert again.digest == first.digest
    counts = again.destinations[0]
    assert (counts.uploaded, counts.skipped, counts.manifests, counts.manifests_skipped) == (0, 0, 0, 1)
    # a new tag of the same index: one HEAD by digest, one PUT of the tag
    tagged = push(f"oci:{multi}:multi", f"docker://{registry.host}/multi:again", options=FAST).destinations[0]
    assert (tagged.uploaded, tagged.skipped, tagged.manifests, tagged.manifests_skipped) == (0, 0, 1, 0)


def test_several_destinations_one_registry(registry: Registry, layouts: dict[str, Path], tmp_path: Path) -> None:
    single = layouts["single"]
    result = push(
        single,
        [f"{registry.host}/many/a:1", f"{registry.host}/many/a:2", f"{registry.host}/many/b"],
        options=FAST,
    )
    a1, a2, b = result.destinations
    assert (a1.uploaded, a1.mounted) == (3, 0)
    assert (a2.uploaded, a2.mounted, a2.skipped, a2.manifests) == (0, 0, 0, 1)  # only the tag
    assert (b.uploaded, b.mounted, b.reference) == (0, 3, f"docker://{registry.host}/many/b:1.0")
    for ref in ("many/a:1", "many/a:2", "many/b:1.0"):
        dest = tmp_path / ref.replace("/", "_").replace(":", "_")
        assert pull(f"{registry.host}/{ref}", dest)["digest"] == str(result.digest)


def test_digest_destination(registry: Registry, layouts: dict[str, Path]) -> None:
    digest = entry(layouts["single"], "1.0")["digest"]
    result = push(layouts["single"], f"{registry.host}/bydigest@{digest}", options=FAST)
    assert result.destinations[0].reference.endswith(f"bydigest@{digest}")
    wrong = "sha256:" + "0" * 64
    with pytest.raises(FormatError, match="digest differs"):
        push(layouts["single"], f"{registry.host}/bydigest@{wrong}", options=FAST)


def test_corrupt_local_blob_is_not_sent(proxy: FaultProxy, layouts: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from pyoci.errors import DigestMismatchError

    layout = tmp_path / "corrupt"
    shutil.copytree(layouts["single"], layout)
    manifest = read_json(layout / "blobs" / "sha256" / entry(layout, "1.0")["digest"].split(":")[1])
    path = layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match="digest: expected"):
        push(layout, f"{proxy.host}/corrupt:1", options=RegistryOptions(retry_times=3, retry_delay=0.01, jobs=1))
    layer = manifest["layers"][0]["digest"].replace(":", "%3A")
    assert not [p for m, p, s in proxy.log if m == "PUT" and layer in p and s == 201]  # never completed
    assert len([p for m, p, _ in proxy.log if m == "POST"]) == 2  # config, layer (one at a time): not retried


def test_mount_from_is_a_201_without_upload(proxy: FaultProxy, layouts: dict[str, Path]) -> None:
    push(layouts["single"], f"{proxy.host}/mount/src:1", options=FAST)
    proxy.log.clear()
    result = push(layouts["single"], f"{proxy.host}/mount/dst:1", options=FAST, mount_from=["mount/src"])
    assert (result.destinations[0].mounted, result.destinations[0].uploaded) == (3, 0)
    mounts = [(m, p, s) for m, p, s in proxy.log if "mount=" in p]
    assert len(mounts) == 3 and all(s == 201 and "from=mount%2Fsrc" in p for _, p, s in mounts)
    assert not [p for m, p, _ in proxy.log if m in ("PUT", "PATCH") and "/blobs/uploads/" in p]


def test_chunked_upload(proxy: FaultProxy, layouts: dict[str, Path], tmp_path: Path) -> None:
    options = RegistryOptions(chunk_size=1000, retry_delay=0.01)
    result = push(layouts["single"], f"{proxy.host}/chunked:1", options=options)
    patches = [p for m, p, s in proxy.log if m == "PATCH" and s == 202]
    layer = read_json(layouts["single"] / "blobs" / "sha256" / str(result.digest).split(":")[1])["layers"][0]
    assert layer["size"] > 3000 and len(patches) >= -(-layer["size"] // 1000)
    assert pull(f"{proxy.host}/chunked:1", tmp_path / "pulled")["digest"] == str(result.digest)


def test_retries_after_503_and_a_cut_patch(proxy: FaultProxy, layouts: dict[str, Path], tmp_path: Path) -> None:
    proxy.faults = [
        Fault("GET", "/v2/", "503"),
        Fault("HEAD", "/blobs/", "503"),
        Fault("PATCH", "/blobs/uploads/", "cut"),
        Fault("PUT", "/blobs/uploads/", "503"),
        Fault("PUT", "/manifests/", "503"),
    ]
    options = RegistryOptions(chunk_size=1000, retry_times=3, retry_delay=0.01)
    result = push(layouts["single"], f"{proxy.host}/faulty:1", options=options)
    assert all(f.used for f in proxy.faults)
    assert [s for _, _, s in proxy.log].count(503) == 4 and -1 in [s for _, _, s in proxy.log]
    assert pull(f"{proxy.host}/faulty:1", tmp_path / "pulled")["digest"] == str(result.digest)


def test_retries_give_up_with_a_clear_error(proxy: FaultProxy, layouts: dict[str, Path]) -> None:
    proxy.faults = [Fault("PUT", "/manifests/", "503") for _ in range(3)]
    options = RegistryOptions(retry_times=2, retry_delay=0.01)
    with pytest.raises(RegistryError, match=r"HTTP 503 \(after 3 attempts\)"):
        push(layouts["single"], f"{proxy.host}/giveup:1", options=options)


def test_basic_auth_and_no_password_in_output(basic_registry: Registry, tmp_path: Path) -> None:
    archive = str(FIXTURES / "hello-amd64.tar")
    dest = f"docker://{basic_registry.host}/basic:1"
    ok = run_pyoci("push", "--debug", "--creds", f"{USER}:{PASSWORD}", archive, dest)
    assert ok.stdout.decode().startswith("sha256:")
    assert b"Authorization: <redacted>" in ok.stderr or b"authorization: <redacted>" in ok.stderr
    bad = run_pyoci("push", "--debug", "--creds", f"{USER}:wrong-{PASSWORD}", archive, dest, check=False)
    assert bad.returncode == 1 and b"access denied with the credentials from --creds" in bad.stderr
    none = run_pyoci("push", archive, dest, check=False)
    assert none.returncode == 1 and b"no credentials found" in none.stderr
    for proc in (ok, bad):
        out = proc.stdout + proc.stderr
        assert PASSWORD.encode() not in out
        assert PASSWORD.encode().hex().encode() not in out
        import base64

        assert base64.b64encode(f"{USER}:{PASSWORD}".encode()) not in out
    creds = f"--src-creds={USER}:{PASSWORD}"
    assert pull(f"{basic_registry.host}/basic:1", tmp_path / "pulled", creds)["digest"] == ok.stdout.decode().strip()


def _auth_json(path: Path, key: str, user: str = USER, password: str = PASSWORD) -> Path:
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {key: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}))
    return path


def _helper(bin_dir: Path, name: str, server: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    answer = json.dumps({"ServerURL": server, "Username": USER, "Secret": PASSWORD})
    script.write_text(
        f"#!{sys.executable}\nimport sys\nserver = sys.stdin.read().strip()\n"
        f"if sys.argv[1:] == ['get'] and server == {server!r}:\n    print({answer!r})\n"
        "else:\n    print('credentials not found in native keychain'); sys.exit(1)\n"
    )
    script.chmod(0o755)


def test_credential_sources_in_order(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "PATH": os.environ["PATH"]}
    assert find_credentials("r.example:5000", environ=env) is None
    # ~/.docker/config.json: auths (URL keys normalised), Docker Hub's legacy key
    _auth_json(tmp_path / "home/.docker/config.json", "https://index.docker.io/v1/", "hub")
    assert find_credentials("docker.io", environ=env).username == "hub"  # type: ignore[union-attr]
    # DOCKER_CONFIG replaces ~/.docker
    env["DOCKER_CONFIG"] = str(tmp_path / "dockercfg")
    _auth_json(tmp_path / "dockercfg/config.json", "r.example:5000", "docker")
    assert find_credentials("r.example:5000", environ=env).username == "docker"  # type: ignore[union-attr]
    # $XDG_CONFIG_HOME/containers/auth.json comes before Docker's file
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdgconfig")
    _auth_json(tmp_path / "xdgconfig/containers/auth.json", "r.example:5000", "xdgconfig")
    assert find_credentials("r.example:5000", environ=env).username == "xdgconfig"  # type: ignore[union-attr]
    # $XDG_RUNTIME_DIR/containers/auth.json before that; a repository-scoped key wins over the host
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    runtime = _auth_json(tmp_path / "run/containers/auth.json", "r.example:5000", "runtime")
    data = read_json(runtime)
    data["auths"]["r.example:5000/team/app"] = {"auth": "dGVhbTpwdw=="}  # team:pw
    runtime.write_text(json.dumps(data))
    assert find_credentials("r.example:5000", environ=env).username == "runtime"  # type: ignore[union-attr]
    assert find_credentials("r.example:5000", "team/app", environ=env).username == "team"  # type: ignore[union-attr]
    # REGISTRY_AUTH_FILE replaces the runtime file; --authfile replaces both
    env["REGISTRY_AUTH_FILE"] = str(_auth_json(tmp_path / "raf.json", "r.example:5000", "raf"))
    assert find_credentials("r.example:5000", environ=env).username == "raf"  # type: ignore[union-attr]
    explicit = _auth_json(tmp_path / "explicit.json", "r.example:5000", "explicit")
    assert find_credentials("r.example:5000", authfile=explicit, environ=env).username == "explicit"  # type: ignore[union-attr]
    with pytest.raises(AuthError, match="not found"):
        find_credentials("r.example:5000", authfile=tmp_path / "missing.json", environ=env)
    # credHelpers, then credsStore, through docker-credential-* programs on PATH
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "stub", "helped.example")
    env = {"HOME": str(tmp_path / "h2"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    (tmp_path / "h2/.docker").mkdir(parents=True)
    config = {"auths": {"helped.example": {}}, "credHelpers": {"helped.example": "stub"}, "credsStore": "stub"}
    (tmp_path / "h2/.docker/config.json").write_text(json.dumps(config))
    creds = find_credentials("helped.example", environ=env)
    assert creds is not None
    assert (creds.username, creds.password, creds.source) == (USER, PASSWORD, "docker-credential-stub")
    assert PASSWORD not in repr(creds)
    assert find_credentials("other.example", environ=env) is None  # credsStore: "not found" is no credentials
    config["credsStore"] = "absent"
    (tmp_path / "h2/.docker/config.json").write_text(json.dumps(config))
    with pytest.raises(AuthError, match="docker-credential-absent: credential helper not found"):
        find_credentials("other.example", environ=env)


def test_credential_helper_end_to_end(basic_registry: Registry, layouts: dict[str, Path], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "stub", basic_registry.host)
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credHelpers": {basic_registry.host: "stub"}}))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOCKER_CONFIG": str(docker),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
    }
    env.pop("REGISTRY_AUTH_FILE", None)
    args = [sys.executable, "-m", "pyoci", "push", "--debug", str(layouts["single"]), f"{basic_registry.host}/helped"]
    proc = subprocess.run(args, capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert PASSWORD.encode() not in proc.stdout + proc.stderr


def test_token_auth_reauth_on_insufficient_scope(
    token_registry: tuple[Registry, TokenIssuer], layouts: dict[str, Path], tmp_path: Path
) -> None:
    registry, issuer = token_registry
    issuer.withhold_push["tok/app"] = 1  # the first token for tok/app lacks push
    options = RegistryOptions(creds=f"{USER}:{PASSWORD}", retry_delay=0.01)
    result = push(layouts["multi"], [f"{registry.host}/tok/app:1", f"{registry.host}/tok/other:1"], options=options)
    granted = [r for r in issuer.requests if not r.get("refused")]
    # token 1 (pull only) -> 401 insufficient_scope -> token 2 (pull,push); token reused for all of tok/app;
    # token 3 adds tok/other (and pull on tok/app for the mounts)
    assert len(granted) == 3, issuer.requests
    assert granted[0]["access"][0]["actions"] == ["pull"] and "push" in granted[1]["access"][0]["actions"]
    assert sorted(granted[2]["scopes"]) == ["repository:tok/app:pull,push", "repository:tok/other:pull,push"]
    assert result.destinations[1].mounted == 12
    creds = f"--src-creds={USER}:{PASSWORD}"
    assert pull(f"{registry.host}/tok/other:1", tmp_path / "pulled", creds)["digest"] == str(result.digest)


def test_token_auth_refused_and_secrets_redacted(
    token_registry: tuple[Registry, TokenIssuer], layouts: dict[str, Path]
) -> None:
    registry, issuer = token_registry
    with pytest.raises(AuthError, match="token service refused anonymous access"):
        push(layouts["single"], f"{registry.host}/tok/anon:1", options=FAST)
    ok = run_pyoci("push", "--debug", "--creds", f"{USER}:{PASSWORD}", str(layouts["single"]), f"{registry.host}/t:1")
    assert issuer.issued and ok.stdout.decode().startswith("sha256:")
    out = ok.stdout + ok.stderr
    assert b"Bearer" not in out or b"<redacted>" in out
    assert not any(token.encode() in out for token in issuer.issued)
    assert PASSWORD.encode() not in out


def test_challenge_parsing() -> None:
    [bearer] = parse_challenges('Bearer realm="https://a/token",service="reg",scope="repository:x/y:pull,push"')
    assert bearer.scheme == "bearer" and bearer.params["scope"] == "repository:x/y:pull,push"
    basic, bearer2 = parse_challenges('Basic realm="r\\"q", Bearer realm=https://b,error=insufficient_scope')
    assert basic.params == {"realm": 'r"q'} and bearer2.params["error"] == "insufficient_scope"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker://ghcr.io/owner/app:1", "ghcr.io/owner/app:1"),
        ("user/app", "docker.io/user/app"),
        ("alpine:3", "docker.io/library/alpine:3"),
        ("127.0.0.1:5000/a/b@sha256:" + "a" * 64, "127.0.0.1:5000/a/b@sha256:" + "a" * 64),
    ],
)
def test_destination_names(text: str, expected: str) -> None:
    from pyoci.commands.push import parse_destination

    assert str(parse_destination(text)) == expected


def test_bad_destinations() -> None:
    from pyoci.commands.push import parse_destination

    for text in ("oci:/tmp/x:1", "docker://Upper/Case", "static:dir", "static:dir:Bad/Repo", "static::x"):
        with pytest.raises(FormatError):
            parse_destination(text)


def test_tls_with_private_ca(layouts: dict[str, Path], tmp_path: Path) -> None:
    need_tool("docker-registry")
    ca, cert, key = make_certificates(tmp_path / "pki")
    cert_dir = tmp_path / "certs.d"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(ca.read_bytes())
    tls = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
    reg = start_registry(tmp_path / "registry", http_extra=tls)
    try:
        with pytest.raises(RegistryError, match="(?i)certificate verify failed"):
            push(layouts["single"], f"{reg.host}/tls:1", options=FAST)
        ok = push(layouts["single"], f"{reg.host}/tls:1", options=RegistryOptions(cert_dir=str(cert_dir)))
        assert ok.destinations[0].uploaded == 3
        insecure = push(layouts["single"], f"{reg.host}/tls:2", options=RegistryOptions(tls_verify=False))
        assert (insecure.destinations[0].uploaded, insecure.destinations[0].manifests) == (0, 1)  # the new tag
        cli = run_pyoci("push", "-q", "--cert-dir", str(cert_dir), str(layouts["single"]), f"{reg.host}/tls:3")
        assert cli.stdout.decode().strip() == str(ok.digest)
    finally:
        reg.stop()


def test_plain_http_refused_for_remote_hosts() -> None:
    # A non-loopback registry is only spoken to over verified HTTPS; the name does not resolve here.
    options = RegistryOptions(retry_times=0, timeout=2)
    with pytest.raises(RegistryError, match="cannot connect over HTTPS"):
        push(str(FIXTURES / "hello-amd64.tar"), "docker://registry.invalid/app:1", options=options)
