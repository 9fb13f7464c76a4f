"""The one set of OCI layout readers the tests use: plain JSON and file access, independent of pyoci's own reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REF_NAME = "org.opencontainers.image.ref.name"


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, encoded = digest.split(":")
    return layout / "blobs" / algorithm / encoded


def blob(layout: Path, digest: str) -> bytes:
    return blob_path(layout, digest).read_bytes()


def entries(layout: Path) -> list[dict[str, Any]]:
    """index.json's entries."""
    found: list[dict[str, Any]] = read_json(layout / "index.json")["manifests"]
    return found


def entry(layout: Path, tag: str | None = None) -> dict[str, Any]:
    """The one index.json entry holding ``tag`` (or the only entry when ``tag`` is None)."""
    chosen = [e for e in entries(layout) if tag is None or e.get("annotations", {}).get(REF_NAME) == tag]
    assert len(chosen) == 1, (tag, chosen)
    return chosen[0]


def document(layout: Path, tag: str | None = None, media_type: str | None = None) -> dict[str, Any]:
    """The manifest or index the tag points at (the only entry when ``tag`` is None), parsed."""
    found = entry(layout, tag)
    if media_type is not None:
        assert found["mediaType"] == media_type, found
    parsed: dict[str, Any] = json.loads(blob(layout, found["digest"]))
    return parsed


def blob_names(layout: Path) -> list[str]:
    """The hex names of every blob file, sorted."""
    return sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())


def image_blobs(layout: Path, manifest_digest: str) -> set[str]:
    """The hex names of a manifest and of its config and layers."""
    manifest = json.loads(blob(layout, manifest_digest))
    digests = [manifest_digest, manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    return {d.split(":")[1] for d in digests}


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path -> bytes); empty when it does not exist."""
    if not directory.exists():
        return {}
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
