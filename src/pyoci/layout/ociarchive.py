"""``oci-archive``: an OCI image layout stored as a tar file, written deterministically.

Members are sorted by path, with mtime 0, owner 0:0 and no user or group names, so the same layout
always gives the same tar bytes. The file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from pyoci.fsutil import TEMP_PREFIX, atomic_file


def _info(name: str, path: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path.is_dir():
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = path.stat().st_size
        info.mode = 0o644
    return info


def write_layout_tar(layout_dir: Path, target: Path) -> None:
    """Write the layout at ``layout_dir`` as a tar file at ``target`` (replaced atomically).

    Temporary files of the layout (names starting with ``.pyoci-tmp-``) are left out.
    """
    paths = sorted(p for p in layout_dir.rglob("*") if not p.name.startswith(TEMP_PREFIX))
    with atomic_file(target) as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            info = _info(path.relative_to(layout_dir).as_posix(), path)
            if info.isdir():
                tar.addfile(info)
            else:
                with open(path, "rb") as f:
                    tar.addfile(info, f)
