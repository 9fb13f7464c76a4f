"""Importing into a layout (issue 12): nothing is committed before every document is built."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from archives import simple_archive
from conftest import FIXTURES, snapshot

from pyoci import convert
from pyoci.archive import plan
from pyoci.manifest import ImageConfig


def test_nothing_is_committed_before_every_document_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a value that cannot be written (as a lone surrogate in 'variant' once was) must fail before the
    # first blob is committed: the layout keeps exactly what it held
    parse = ImageConfig.parse

    def unwritable(raw: bytes, where: str) -> ImageConfig:
        config = parse(raw, where)
        return dataclasses.replace(config, platform=dataclasses.replace(config.platform, variant="\udcff"))

    layout = tmp_path / "layout"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{layout}:keep")
    before = snapshot(layout)
    monkeypatch.setattr(plan.ImageConfig, "parse", unwritable)
    source = tmp_path / "a.tar"
    source.write_bytes(simple_archive())
    with pytest.raises(UnicodeEncodeError):
        convert(str(source), f"oci:{layout}:t")
    assert snapshot(layout) == before
