"""Every Python example in README.md runs as written, and the README's test command is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES
from support.paths import ROOT
from support.registry import Registry

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def block(needle: str) -> str:
    found = [code for code in BLOCKS if needle in code]
    assert len(found) == 1, needle
    return found[0]


def test_every_python_block_is_tested() -> None:
    names = ["pyoci.convert(", "pyoci.build(", "pyoci.push(", "pyoci.copy("]
    assert sorted(BLOCKS) == sorted(block(name) for name in names)


def test_python_examples_run_as_written(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "fixtures").symlink_to(FIXTURES)
    (tmp_path / "dist").mkdir()
    for arch in ("amd64", "arm64"):
        (tmp_path / "dist" / f"app-linux-{arch}").write_bytes(f"#!/bin/sh\necho {arch}\n".encode())
    # the README's first command, then each example in an order where what one needs exists
    first = re.search(r"\.venv/bin/pyoci (convert .*?) && \.venv/bin/pyoci (verify .*?)\n", README)
    assert first is not None
    for command in first.groups():
        proc = subprocess.run([sys.executable, "-m", "pyoci", *command.split()], cwd=tmp_path, capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
    for name in ("pyoci.convert(", "pyoci.build(", "pyoci.push(", "pyoci.copy("):
        code = block(name).replace("ghcr.io", registry.host)  # the one registry the tests have
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=120)
        assert proc.returncode == 0, (name, proc.stderr.decode())
        assert proc.stdout.decode().startswith("sha256:"), (name, proc.stdout.decode())
    assert (tmp_path / "site/v2/me/app/tags/list").is_file() and (tmp_path / "out/hello.tar").is_file()


def test_the_test_command_is_the_one_ci_runs() -> None:
    readme = re.findall(r"^python3 -m venv \.venv && .*pytest$", README, re.M)
    ci = re.findall(r"^python3 -m venv \.venv && .*pytest$", (ROOT / ".ci/run").read_text(), re.M)
    assert len(readme) == 1 and readme == ci


def test_no_subpackage_is_shadowed_by_an_exported_function() -> None:
    import importlib

    import pyoci

    for name in pyoci.__all__:
        try:
            module = importlib.import_module(f"pyoci.{name}")
        except ModuleNotFoundError:
            continue
        pytest.fail(f"pyoci.{name} is both an export and the module {module.__name__}")
