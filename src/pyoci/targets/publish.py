"""The publishing plan of a static tree: every object a host serves, with its key, content type and order.

A host without pyoci's nginx configuration (an S3 or Garage bucket served as a website) needs each
object under the URL path a client asks for, with the right ``Content-Type`` stored beside it
(distribution-spec ``spec.md`` "Pulling manifests": the manifest's media type). The keys are the
URL paths (``v2/REPO/manifests/REF`` with no kind suffix, ``v2/REPO/blobs/DIGEST``, ``v2/_catalog``,
``v2/REPO/tags/list``, ``v2/index.html`` for ``/v2/``), relative to the tree root.

Order, children before parents, so that a reader of the host at any moment sees a tag's old image
or its complete new one (:data:`PHASES`): blobs, manifests by digest, indexes by digest (an index
after every index it holds: :attr:`TreeObject.level`), tags, ``tags/list``, then ``_catalog`` and
the ``/v2/`` answer.

The snapshot is taken in the reverse order (listings, tags, manifests, blobs) while the caller
holds the tree's writer lock (no ``gc`` meanwhile): exports write children first, so everything a
tag read early refers to is present when the children are listed later, even if an export runs
meanwhile. Documents are kept as the bytes read; blobs are streamed from their files later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyoci import mediatype
from pyoci.digest import Digest
from pyoci.manifest import Index
from pyoci.targets.static import StaticRepository, StaticTree, read_small

BLOB = "blob"
MANIFEST = "manifest"
INDEX = "index"
TAG = "tag"
TAG_LIST = "tags-list"
CATALOG = "catalog"
PHASES = (BLOB, MANIFEST, INDEX, TAG, TAG_LIST, CATALOG)
"""Publishing phases, first to last."""
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class TreeObject:
    """One object to publish.

    Attributes:
        key: its URL path relative to the tree root, e.g. ``v2/app/manifests/1.0``.
        content_type: the ``Content-Type`` to store with it.
        size: bytes.
        phase: one of :data:`PHASES`.
        level: among indexes, 1 + the deepest level of the indexes it holds (0 for the others).
        path: the file holding a blob (streamed at upload time); None for documents.
        data: the bytes of a document (manifest, index, listing) as snapshotted; None for blobs.
        digest: the digest a content-addressed key names (blobs, manifests by digest); None otherwise.
    """

    key: str
    content_type: str
    size: int
    phase: str
    level: int = 0
    path: Path | None = None
    data: bytes | None = None
    digest: Digest | None = None

    @property
    def order(self) -> tuple[int, int]:
        """``(phase position, level)``: objects of one order may go up in parallel."""
        return PHASES.index(self.phase), self.level


def snapshot(tree: StaticTree) -> list[TreeObject]:
    """Every object of ``tree`` in publishing order (see the module docstring), keys sorted within an order.

    Raises:
        FormatError: a manifest file that is not a JSON manifest or index, or a document too large.
        OSError: a file cannot be read.
    """
    objects: list[TreeObject] = []
    for name in ("_catalog", "index.html"):
        path = tree.v2 / name
        if path.is_file():
            data = read_small(path)
            objects.append(TreeObject(f"v2/{name}", JSON, len(data), CATALOG, data=data))
    repositories = [tree.repository(repo) for repo in tree.repositories()]
    for repo in repositories:
        path = repo.directory / "tags" / "list"
        if path.is_file():
            data = read_small(path)
            objects.append(TreeObject(f"v2/{repo.repository}/tags/list", JSON, len(data), TAG_LIST, data=data))
    for repo in repositories:
        objects.extend(_tags(repo))
    for repo in repositories:
        objects.extend(_by_digest(repo))
    for repo in repositories:
        for path in repo.blobs():
            key = f"v2/{repo.repository}/blobs/{path.name}"
            size = path.stat().st_size
            objects.append(TreeObject(key, OCTET_STREAM, size, BLOB, path=path, digest=Digest.parse(path.name)))
    return sorted(objects, key=lambda o: (o.order, o.key))


def _tags(repo: StaticRepository) -> list[TreeObject]:
    out = []
    for tag in repo.tags():
        file = repo.manifest_file(tag)  # again: a concurrent export may have changed its kind since the listing
        if file is None:
            continue
        data = read_small(file.path)
        out.append(TreeObject(file.key, file.media_type, len(data), TAG, data=data))
    return out


def _by_digest(repo: StaticRepository) -> list[TreeObject]:
    files = {ref: f for ref, f in repo.manifests().items() if not f.is_tag}
    data = {ref: read_small(f.path) for ref, f in files.items()}
    children: dict[str, list[str]] = {}
    for ref, file in files.items():
        if file.media_type in mediatype.INDEX_TYPES:
            index = Index.parse(data[ref], str(file.path))
            children[ref] = [str(d.digest) for d in index.manifests if str(d.digest) in files]
    levels: dict[str, int] = {}

    def level(ref: str) -> int:
        if ref not in levels:
            held = [level(child) for child in children[ref] if child in children]
            levels[ref] = 1 + max(held) if held else 0
        return levels[ref]

    out = []
    for ref, file in files.items():
        is_index = ref in children
        out.append(
            TreeObject(
                file.key,
                file.media_type,
                len(data[ref]),
                INDEX if is_index else MANIFEST,
                level(ref) if is_index else 0,
                data=data[ref],
                digest=Digest.parse(ref),
            )
        )
    return out
