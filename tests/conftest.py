"""Shared fixtures: paths to samples and fixtures, CLI runner, schema validation of whole layouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SHARED = Path(os.environ.get("PYOCI_SHARED") or ROOT.parent / "shared")
SAMPLES = SHARED / "samples"
SCHEMAS = SHARED / "oci-schemas"


def need_shared() -> None:
    if not SAMPLES.is_dir() or not SCHEMAS.is_dir():
        pytest.skip("../shared/ (samples and OCI schemas) is absent beside the project")


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


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def blob(layout: Path, digest: str) -> bytes:
    algorithm, encoded = digest.split(":")
    return (layout / "blobs" / algorithm / encoded).read_bytes()


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


def snapshot(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
