"""Shared fixtures: paths to samples and fixtures, CLI runner, schema validation of whole layouts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.images import multi_layout, single_layout
from support.layouts import read_json
from support.paths import FIXTURES as FIXTURES
from support.paths import SAMPLES, SCHEMAS
from support.registry import Registry, htpasswd, start_registry
from support.token_issuer import TokenIssuer

USER, PASSWORD = "alice", "s3cret-Pa55word"


def need_shared() -> None:
    if not SAMPLES.is_dir() or not SCHEMAS.is_dir():
        pytest.skip("../shared/ (samples and OCI schemas) is absent beside the project (see README; PYOCI_SHARED=DIR)")


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return path


@pytest.fixture
def sample():
    need_shared()

    def get(name: str) -> Path:
        matches = sorted(SAMPLES.glob(f"{name}*"))
        assert matches, name
        return matches[0]

    return get


def run_pyoci(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI in a child process (as a user would)."""
    proc = subprocess.run([sys.executable, "-m", "pyoci", *args], input=input, capture_output=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"pyoci {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc


def validate_layout(layout: Path) -> None:
    """Validate every JSON document of a layout against the OCI schemas, and run pyoci verify."""
    from pyoci import verify

    need_shared()
    report = verify(layout, schemas_dir=SCHEMAS)
    assert report.problems == [], report.problems
    assert not any("skipped" in note for note in report.notes)
    files = sorted(p.relative_to(layout).as_posix() for p in layout.rglob("*") if p.is_file())
    assert "oci-layout" in files and "index.json" in files
    assert not [f for f in files if ".pyoci-tmp-" in f]


@pytest.fixture(scope="session")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {"single": single_layout(base / "single"), "multi": multi_layout(base / "multi")}


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    need_tool("docker-registry")
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    need_tool("docker-registry")
    work = tmp_path_factory.mktemp("basic")
    users = htpasswd(work / "htpasswd", {USER: PASSWORD})
    reg = start_registry(work, f"auth:\n  htpasswd:\n    realm: pyoci-test\n    path: {users}\n")
    yield reg
    reg.stop()


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[Registry, TokenIssuer]]:
    need_tool("docker-registry")
    issuer = TokenIssuer({USER: PASSWORD}, tmp_path / "issuer")
    reg = start_registry(tmp_path / "registry", issuer.registry_auth())
    yield reg, issuer
    reg.stop()
    issuer.stop()


def pull(reference: str, dest: Path, *creds: str) -> dict[str, object]:
    """skopeo copy --all from the registry into an OCI layout; return its index.json entry."""
    need_tool("skopeo")
    args = ["skopeo", "copy", "--all", "--src-tls-verify=false", *creds, f"docker://{reference}", f"oci:{dest}:pulled"]
    proc = subprocess.run(args, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    entry: dict[str, object] = read_json(dest / "index.json")["manifests"][0]
    return entry
