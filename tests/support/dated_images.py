"""Multi-arch test images with a chosen ``created`` time: a base layer per architecture shared by every
version, and an app layer per version and architecture (so versions share exactly their base layers)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pyoci.commands.merge import merge
from support.archives import docker_archive, layer_tar

PLATFORMS = (("amd64", None), ("arm64", "v8"))


def dated_archive(path: Path, arch: str, variant: str | None, version: str, created: str) -> Path:
    base = layer_tar({"base/arch.txt": f"base layer for {arch}\n".encode() * 300})
    app = layer_tar({"app/version.txt": f"app {version} for {arch}\n".encode() * 300})
    layers = [base, app]
    config: dict[str, object] = {"architecture": arch, "os": "linux", "created": created, "config": {}}
    if variant:
        config["variant"] = variant
    config["rootfs"] = {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(x).hexdigest()}" for x in layers]}
    raw = json.dumps(config).encode()
    config_name = f"{hashlib.sha256(raw).hexdigest()}.json"
    names = [f"{hashlib.sha256(x).hexdigest()}.tar" for x in layers]
    manifest = [{"Config": config_name, "RepoTags": [f"example.com/app:{version}"], "Layers": names}]
    members = [(n, x, None) for n, x in zip(names, layers, strict=True)]
    members += [(config_name, raw, None), ("manifest.json", json.dumps(manifest).encode(), None)]
    path.write_bytes(docker_archive(members))
    return path


def dated_layout(directory: Path, version: str, created: str, platforms=PLATFORMS) -> Path:
    """``oci:DIRECTORY:VERSION``: an image index over ``platforms``, every config created at ``created``."""
    directory.mkdir(parents=True, exist_ok=True)
    archives = [
        str(dated_archive(directory.parent / f"{directory.name}-{arch}.tar", arch, variant, version, created))
        for arch, variant in platforms
    ]
    merge(archives, f"oci:{directory}:{version}")
    return directory
