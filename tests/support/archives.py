"""Build small docker-archives in tests (for bad-input and property tests)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_for(layers: list[bytes], arch: str = "amd64") -> bytes:
    diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    return json.dumps(
        {"architecture": arch, "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()


def docker_archive(
    members: list[tuple[str, bytes | None, str | None]],
) -> bytes:
    """members: (name, data, symlink target); data None with a target makes a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, target in members:
            info = tarfile.TarInfo(name)
            if target is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = target
                tar.addfile(info)
            else:
                assert data is not None
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def simple_archive(n_layers: int = 2, manifest_last: bool = True, tags: list[str] | None = None) -> bytes:
    layers = [layer_tar({f"file{i}.txt": (f"layer {i}\n" * 1000).encode()}) for i in range(n_layers)]
    config = config_for(layers)
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    names = [f"{hashlib.sha256(layer).hexdigest()}.tar" for layer in layers]
    manifest = json.dumps([{"Config": config_name, "RepoTags": tags or ["example.com/t:1"], "Layers": names}]).encode()
    body = [(n, layer, None) for n, layer in zip(names, layers, strict=True)] + [(config_name, config, None)]
    entry = [("manifest.json", manifest, None)]
    return docker_archive(body + entry if manifest_last else entry + body)
