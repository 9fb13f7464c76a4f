"""Open any source reference as a :class:`~pyoci.targets.Source`, with one staging policy.

* ``oci:DIR[:TAG|@DIGEST]`` (or a directory): read in place, under the layout's writer lock so a
  concurrent ``pyoci gc`` cannot remove what is being read.
* ``docker-archive:`` (a file, ``-`` for stdin): imported in one streaming pass into a staging
  layout, compressed as ``options`` say, then read from there.
* ``oci-archive:FILE[:TAG]``: extracted into a staging layout, then read from there.
* ``docker://HOST/REPO[:TAG|@DIGEST]``: read from the registry (manifests and configs fetched,
  blobs streamed when a target asks for them), through the registry client of the command's
  :class:`~pyoci.targets.session.Destinations` when it has one for that registry (one connection
  and one token for both sides).
* ``static:DIR:REPO[:TAG|@DIGEST]``: read from the tree's files.

**Staging policy**: a staging layout is a temporary directory (``.pyoci-tmp-<pid>-...``) inside
``staging`` when the caller has a local destination (so its blobs can be hard-linked, not copied,
and a later ``pyoci gc`` of that destination removes the leftovers of a killed run), else in the
system temporary directory; layers are never staged uncompressed unless asked for. The directory is
removed when the source is closed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pyoci.fsutil import temp_name
from pyoci.layout.ociarchive import extract_layout_tar
from pyoci.layout.store import ImageLayout
from pyoci.mediatype import LayerOptions
from pyoci.progress import Progress
from pyoci.reference import ArchiveReference, ImageName, LayoutReference, Reference, StaticReference, expect, parse
from pyoci.targets import Source
from pyoci.targets.layout import LayoutSource
from pyoci.targets.options import RegistryOptions
from pyoci.targets.session import Destinations, registry_client
from pyoci.targets.static_source import StaticSource

LOCAL_SOURCES = ("oci", "oci-archive", "docker-archive")
"""The transports read from this machine's files."""
ALL_SOURCES = (*LOCAL_SOURCES, "docker", "static")
"""Every transport :func:`open_source` opens."""


@contextlib.contextmanager
def staging_directory(staging: Path | None) -> Iterator[Path]:
    """A fresh temporary directory inside ``staging`` (created when needed), else the system's; removed at exit.

    The directories created for ``staging`` are removed at exit too when they are still empty (the
    command failed before its destination was written), so a failed run leaves nothing behind.

    Raises:
        OSError: it cannot be created.
    """
    if staging is None:
        with tempfile.TemporaryDirectory(prefix=".pyoci-tmp-") as tmp:
            yield Path(tmp)
        return
    created = [directory for directory in (staging, *staging.parents) if not directory.exists()]
    staging.mkdir(parents=True, exist_ok=True)
    path = temp_name(staging)
    try:
        path.mkdir()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        for directory in created:  # deepest first
            try:
                directory.rmdir()
            except OSError:
                break


@contextlib.contextmanager
def open_source(
    reference: Reference | str | os.PathLike[str],
    *,
    what: str = "reads",
    staging: Path | None = None,
    options: LayerOptions | None = None,
    progress: Progress | None = None,
    transports: tuple[str, ...] = ALL_SOURCES,
    session: Destinations | None = None,
    registry: RegistryOptions | None = None,
) -> Iterator[Source]:
    """Open a source reference (see the module docstring).

    Args:
        reference: the reference; a bare path is a layout when it is a directory, else a docker-archive.
        what: the command's verb phrase for a refused transport, e.g. ``"push reads"``.
        staging: where to stage an archive (the destination's directory when it is local), or None.
        options: how an archive's layers are written when staged (default: gzip).
        progress: receives per-layer byte counts while an archive is imported.
        transports: the transports the command takes.
        session: the command's destinations, whose registry clients a registry source shares.
        registry: how to reach a registry when there is no ``session``.

    Raises:
        FormatError: a malformed reference or another transport.
        ArchiveError, DiffIDMismatchError: an unreadable or inconsistent docker-archive.
        LayoutError: an unreadable layout or oci-archive.
        RegistryError: a registry that cannot be reached or refuses access.
    """
    ref = expect(parse(reference), transports, what)
    if isinstance(ref, ImageName):
        with contextlib.ExitStack() as stack:
            if session is not None:
                client = session.client(ref.domain)
            else:
                client = stack.enter_context(registry_client(ref.domain, registry or RegistryOptions()))
            from pyoci.targets.registry import RegistrySource  # httpx, as the client: only for registries

            yield RegistrySource(client, ref)
        return
    if isinstance(ref, StaticReference):
        source = StaticSource(ref)
        with source.tree.reader_lock():  # a gc of the tree waits until this read is done
            yield source
        return
    if isinstance(ref, LayoutReference) and not ref.archive:
        layout = ImageLayout.open(ref.path)
        with layout.writer_lock():
            yield LayoutSource(layout, ref.tag, ref.digest)
        return
    with staging_directory(staging) as tmp:
        if isinstance(ref, LayoutReference):
            extract_layout_tar(Path(ref.path), tmp)
            yield LayoutSource(ImageLayout.open(tmp), ref.tag)
            return
        assert isinstance(ref, ArchiveReference)  # the last of LOCAL_SOURCES
        from pyoci.archive.plan import import_archive  # loads the codecs: only a docker-archive needs them

        layout = ImageLayout.create(tmp / "layout")
        [image] = import_archive(ref, layout, options or LayerOptions(), progress)
        # this process wrote every blob under its own digest: a target may link them unhashed
        yield LayoutSource(layout, image.tags[0], verified=True)
