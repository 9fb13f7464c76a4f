"""``oci-archive``: an OCI image layout stored as a tar file, written deterministically and read back.

Written: members sorted by path, with mtime 0, owner 0:0 and no user or group names, so the same
layout always gives the same tar bytes; the file is written under a temporary name and renamed.
Read: the members are extracted into a directory (regular files and directories only, every path
kept inside it), which then opens as a layout.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from pyoci.errors import ArchiveError, LayoutError
from pyoci.fsutil import TEMP_PREFIX, atomic_file
from pyoci.tarstream import DIRECTORY, TarReader

_CHUNK = 1 << 20


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


def write_tree_tar(layout_dir: Path, target: Path) -> None:
    """Write the directory tree at ``layout_dir`` (a layout, a docker-archive's files) as a tar file at ``target``.

    Members are sorted by path, with normalised metadata (see the module docstring); the file is
    replaced atomically. Temporary files (names starting with ``.pyoci-tmp-``) are left out.

    Raises:
        OSError: a file cannot be read or the target cannot be written.
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


def extract_layout_tar(archive: Path, directory: Path) -> None:
    """Extract the oci-archive ``archive`` into ``directory`` (which must exist and be empty).

    Only regular files and directories are taken; a member whose path leaves ``directory``, a
    link or a device is refused. Blob contents are not checked here: the layout reader verifies
    every blob against its descriptor when it is read.

    Raises:
        LayoutError: the file cannot be read, is not a tar archive, or holds a refused member.
    """
    where = str(archive)
    try:
        source = open(archive, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LayoutError(f"{where}: cannot open: {exc.strerror}") from exc
    with source:
        try:
            for member in (reader := TarReader(source, where)):
                parts = [part for part in member.name.split("/") if part not in ("", ".")]
                if not parts:
                    continue
                if ".." in parts or parts[0].startswith(TEMP_PREFIX):
                    raise LayoutError(f"{where}: member {member.name!r} is not a layout path")
                path = directory.joinpath(*parts)
                if member.type == DIRECTORY:
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise LayoutError(f"{where}: member {member.name!r}: only files and directories belong in a layout")
                path.parent.mkdir(parents=True, exist_ok=True)
                data = reader.member_data()
                with open(path, "wb") as out:
                    while chunk := data.read(_CHUNK):
                        out.write(chunk)
        except OSError as exc:
            raise LayoutError(f"{where}: cannot extract: {exc.strerror or exc}") from exc
        except ArchiveError as exc:
            raise LayoutError(f"{where}: not an oci-archive: {exc}") from exc
