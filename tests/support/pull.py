"""Pull with skopeo from a served static tree and check the result byte for byte against the tree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pyoci.digest import Digest
from pyoci.targets.static import StaticTree


def skopeo_pull(host: str, repo: str, tag: str, dest: Path) -> None:
    args = ["skopeo", "copy", "--all", "--src-tls-verify=false", f"docker://{host}/{repo}:{tag}", f"oci:{dest}:x"]
    proc = subprocess.run(args, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()


def assert_pulled_exactly(dest: Path, root: Path, repo: str, tag: str) -> None:
    """The pulled layout holds the tag's bytes exactly: its root digest and every blob equal the tree's files."""
    reader = StaticTree(root).repository(repo)
    expected = reader.resolve(tag)
    entry = json.loads((dest / "index.json").read_bytes())["manifests"][0]
    assert (entry["digest"], entry["mediaType"], entry["size"]) == (
        str(expected.digest),
        expected.media_type,
        expected.size,
    )
    for blob in (dest / "blobs" / "sha256").iterdir():
        digest = f"sha256:{blob.name}"
        file = reader.manifest_file(digest)
        source = file.path if file is not None else reader.blob_file(Digest.parse(digest))
        assert blob.read_bytes() == source.read_bytes(), digest
