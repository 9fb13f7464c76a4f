"""Open destination references as targets: one client per registry, one tree per static root, layouts, files.

A :class:`Destinations` is a context manager: registry connections are closed; after a successful
run static trees get their listings and host files rewritten
(:meth:`~pyoci.targets.static.StaticTree.finish`) and docker-archive and oci-archive files are
written whole; on failure nothing of those is written, and layouts have what is still staged removed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pyoci.errors import FormatError
from pyoci.reference import STDIN, ArchiveReference, ImageName, LayoutReference, Reference, StaticReference
from pyoci.targets import Target, tls
from pyoci.targets.archive_files import DockerArchiveTarget, OciArchiveTarget, output_file, staging_beside
from pyoci.targets.layout import LayoutTarget, layout_target
from pyoci.targets.options import RegistryOptions
from pyoci.targets.static import StaticTree, tree_writer

if TYPE_CHECKING:
    from pyoci.targets.client import RegistryClient


def registry_client(domain: str, options: RegistryOptions) -> RegistryClient:
    """A new client of the registry ``domain`` (a context manager that closes its connections).

    The HTTP client (httpx) is imported here, on first use, so that commands that never reach a
    registry never load it; the system CAs load on a thread meanwhile (:func:`pyoci.targets.tls.prefetch`).
    """
    tls.prefetch(options.tls_verify)
    from pyoci.targets.client import RegistryClient

    return RegistryClient(domain, options)


class Destinations:
    """The open destinations of one command.

    Args:
        options: how to reach registries (TLS, credentials, retries).
    """

    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        self._stack = contextlib.ExitStack()
        self.clients: dict[str, RegistryClient] = {}
        self.trees: dict[Path, StaticTree] = {}
        self.layouts: dict[Path, LayoutTarget] = {}
        self.files: dict[Path, DockerArchiveTarget | OciArchiveTarget] = {}

    def __enter__(self) -> Destinations:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                for tree in self.trees.values():
                    tree.finish()
                for file in self.files.values():
                    file.finish()
        finally:
            self._stack.__exit__(kind, exc, traceback)

    def client(self, domain: str) -> RegistryClient:
        """The client of the registry ``domain`` (opened on first use)."""
        if domain not in self.clients:
            self.clients[domain] = self._stack.enter_context(registry_client(domain, self.options))
        return self.clients[domain]

    def target(self, ref: Reference) -> tuple[str, Target]:
        """``(destination key, target)`` for ``ref``; repositories with the same key can mount from each other.

        Raises:
            FormatError: a reference that is not a writable repository or layout (a docker-archive,
                an oci-archive, a bucket, a static tree without a repository).
            LayoutError, RegistryError: the destination cannot be opened.
        """
        if isinstance(ref, StaticReference):
            root = ref.root.absolute()
            if root not in self.trees:
                self.trees[root] = self._stack.enter_context(tree_writer(root))
            return f"static:{root}", self.trees[root].target(ref.repo())
        if isinstance(ref, ImageName):
            client = self.client(ref.domain)
            from pyoci.targets.registry import RegistryTarget  # httpx, as the client: only for registries

            return f"docker://{ref.domain}", RegistryTarget(client, ref.repository)
        if isinstance(ref, LayoutReference) and not ref.archive:
            root = Path(ref.path).absolute()
            if root not in self.layouts:
                self.layouts[root] = self._stack.enter_context(layout_target(root))
            return f"oci:{root}", self.layouts[root]
        if isinstance(ref, LayoutReference | ArchiveReference) and ref.path != STDIN:
            path = output_file(ref.path)
            if path not in self.files:
                staging = self._stack.enter_context(staging_beside(path))
                if isinstance(ref, LayoutReference):
                    self.files[path] = OciArchiveTarget(path, staging)
                else:
                    self.files[path] = DockerArchiveTarget(path, staging, ref.name)
            return f"file:{path}", self.files[path]
        raise FormatError(f"{ref}: not a destination a copy can write into")
