"""A static registry: the file tree a plain web host (nginx, S3, Garage) serves as a read-only registry.

A pull (distribution-spec ``spec.md`` "Pulling manifests", "Pulling blobs", "Content discovery")
only needs GET and HEAD on fixed URLs, so files can answer them::

    ROOT/v2/index.html                         the /v2/ answer ({}), as S3 website hosting serves it
    ROOT/v2/_catalog                           {"repositories": [...]}
    ROOT/v2/REPO/tags/list                     {"name": REPO, "tags": [...]}
    ROOT/v2/REPO/manifests/TAG                 the manifest or index bytes, exactly
    ROOT/v2/REPO/manifests/sha256:HEX          the same, by digest (and every child manifest)
    ROOT/v2/REPO/blobs/sha256:HEX              configs and layers
    ROOT/.pyoci/nginx.conf                     server-level nginx directives for the tree
    ROOT/.pyoci/s3-content-types.tsv           KEY<TAB>Content-Type of every object that is not a blob
    ROOT/.pyoci/s3-upload.sh                   ``aws s3`` commands that upload the tree with those types

A manifest URL must answer with ``Content-Type`` equal to the document's media type and, where the
host can send it, ``Docker-Content-Digest``; nginx gets one exact ``location`` per manifest URL
for that, S3-compatible hosts get per-object content types (they cannot send custom headers; clients
compute the digest themselves). The tree holds many repositories and tags; exporting again adds to
it: blobs already present are never rewritten, a blob another repository of the tree holds is
hard-linked (the tree's "mount"), and every file is written to a temporary name and renamed. The
generated files are rebuilt from the tree after every export, so they always describe all of it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pyoci.descriptor import Descriptor
from pyoci.digest import Digest
from pyoci.errors import FormatError, RegistryError
from pyoci.fsutil import TEMP_PREFIX, atomic_file, fsync_dir, temp_name, write_atomic
from pyoci.jsonio import dump_json, load_json
from pyoci.manifest import document_media_type
from pyoci.progress import Progress
from pyoci.targets import BlobSource

CONFIG_DIR = ".pyoci"
API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
_READ_SIZE = 1 << 20


class StaticTree:
    """A static registry tree being written.

    Args:
        root: the tree's directory (created when absent).

    Call :meth:`target` for each repository, then :meth:`finish` to rewrite the listings and the
    host configuration files.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.v2 = self.root / "v2"
        self._holders: dict[str, Path] | None = None
        try:
            self.v2.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"{self.root}: cannot create the static tree: {exc.strerror}") from exc

    def target(self, repository: str) -> StaticTarget:
        """The push target for ``repository``."""
        return StaticTarget(self, repository)

    def holder(self, digest: Digest) -> Path | None:
        """A repository directory of the tree that already holds the blob ``digest``, or None.

        The tree is walked once per :class:`StaticTree`; blobs written since are recorded by
        :meth:`record`.
        """
        if self._holders is None:
            self._holders = {
                blob.name: blobs.parent
                for blobs in self.v2.rglob("blobs")
                if blobs.is_dir()
                for blob in blobs.iterdir()
            }
        return self._holders.get(str(digest))

    def record(self, digest: Digest, repository: Path) -> None:
        """Note that ``repository`` now holds the blob ``digest``."""
        if self._holders is not None:
            self._holders.setdefault(str(digest), repository)

    def repositories(self) -> list[str]:
        """The repositories of the tree: those in ``_catalog`` and those with a ``manifests`` directory."""
        found: set[str] = set()
        catalog = self.v2 / "_catalog"
        if catalog.is_file():
            try:
                found.update(load_json(catalog.read_bytes(), str(catalog)).get("repositories") or [])
            except (FormatError, AttributeError) as exc:
                raise RegistryError(f"{catalog}: not a catalog: {exc}") from None
        for manifests in self.v2.rglob("manifests"):
            repo = manifests.parent.relative_to(self.v2).as_posix()
            if manifests.is_dir() and (manifests.parent / "blobs").is_dir():
                found.add(repo)
        return sorted(r for r in found if (self.v2 / r / "manifests").is_dir())

    def manifests(self, repository: str) -> list[tuple[str, str, Digest]]:
        """``(reference, media type, digest)`` of every manifest file of ``repository``, sorted."""
        out = []
        directory = self.v2 / repository / "manifests"
        for path in sorted(directory.iterdir()):
            if path.name.startswith(TEMP_PREFIX) or not path.is_file():
                continue
            raw = path.read_bytes()
            try:
                media_type = document_media_type(raw, str(path))
            except FormatError as exc:
                raise RegistryError(str(exc)) from None
            out.append((path.name, media_type, Digest.of_bytes(raw)))
        return out

    def finish(self) -> None:
        """Rewrite ``/v2/``, ``_catalog``, every ``tags/list`` and the host configuration files."""
        repositories = self.repositories()
        self.write_file(self.v2 / "index.html", b"{}")
        self.write_file(self.v2 / "_catalog", dump_json({"repositories": repositories}))
        entries: dict[str, list[tuple[str, str, Digest]]] = {}
        for repo in repositories:
            entries[repo] = self.manifests(repo)
            tags = sorted(ref for ref, _, _ in entries[repo] if ":" not in ref)
            (self.v2 / repo / "tags").mkdir(parents=True, exist_ok=True)
            self.write_file(self.v2 / repo / "tags" / "list", dump_json({"name": repo, "tags": tags}))
        config = self.root / CONFIG_DIR
        config.mkdir(exist_ok=True)
        self.write_file(config / "nginx.conf", nginx_config(self.root, entries).encode())
        types = content_types(entries)
        self.write_file(config / "s3-content-types.tsv", "".join(f"{k}\t{v}\n" for k, v in types.items()).encode())
        self.write_file(config / "s3-upload.sh", s3_upload_script(types).encode())
        (config / "s3-upload.sh").chmod(0o755)

    def write_file(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically unless it already holds exactly those bytes."""
        try:
            if path.is_file() and path.read_bytes() == data:
                return
            write_atomic(path, data)
        except OSError as exc:
            raise RegistryError(f"{path}: cannot write: {exc.strerror}") from exc


class StaticTarget:
    """One repository of a :class:`StaticTree`, as a push Target and Mount."""

    def __init__(self, tree: StaticTree, repository: str) -> None:
        self.tree = tree
        self.repository = repository
        self.directory = tree.v2 / repository

    @property
    def name(self) -> str:
        """``static:ROOT:REPO``."""
        return f"static:{self.tree.root}:{self.repository}"

    def _blob(self, digest: Digest) -> Path:
        return self.directory / "blobs" / str(digest)

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the blob file exists with the descriptor's size (blobs are never rewritten)."""
        path = self._blob(descriptor.digest)
        return path.is_file() and path.stat().st_size == descriptor.size

    def put_blob(self, descriptor: Descriptor, source: BlobSource, progress: Progress) -> None:
        """Hard-link the blob from another repository of the tree, or copy it (verified), fsync and rename.

        Raises:
            DigestMismatchError: the bytes do not match ``descriptor``.
            RegistryError: the file cannot be written.
        """
        holder = self.tree.holder(descriptor.digest)
        # another repository of the tree holds it: link instead of copying
        if holder not in (None, self.directory) and self.mount_blob(
            descriptor, holder.relative_to(self.tree.v2).as_posix()
        ):
            return
        path = self._blob(descriptor.digest)
        progress.start(str(descriptor.digest)[7:19], descriptor.size)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # the source's reader checks digest and size at the end of the stream (DigestMismatchError)
            with source.open_blob(descriptor) as reader, atomic_file(path) as out:
                while data := reader.read(_READ_SIZE):
                    out.write(data)
                    progress.advance(len(data))
            fsync_dir(path.parent)
        except OSError as exc:
            raise RegistryError(f"{path}: cannot write: {exc.strerror}") from exc
        finally:
            progress.finish()
        self.tree.record(descriptor.digest, self.directory)

    def mount_blob(self, descriptor: Descriptor, from_repository: str) -> bool:
        """Hard-link the blob from another repository of the tree; False when it has none or linking fails."""
        source = self.tree.v2 / from_repository / "blobs" / str(descriptor.digest)
        if not source.is_file() or source.stat().st_size != descriptor.size:
            return False
        path = self._blob(descriptor.digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(path.parent)
        try:
            os.link(source, tmp)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        self.tree.record(descriptor.digest, self.directory)
        return True

    def has_manifest(self, descriptor: Descriptor, tag: str | None = None) -> bool:
        """True when the manifest file named by its digest exists (with ``tag``: the tag's file holds those bytes)."""
        manifests = self.directory / "manifests"
        if tag is None:
            return (manifests / str(descriptor.digest)).is_file()
        try:
            return Digest.of_bytes((manifests / tag).read_bytes()) == descriptor.digest
        except FileNotFoundError:
            return False

    def put_manifest(self, descriptor: Descriptor, raw: bytes, tag: str | None) -> None:
        """Write the manifest under its digest and, with ``tag``, under the tag (each atomically)."""
        manifests = self.directory / "manifests"
        try:
            manifests.mkdir(parents=True, exist_ok=True)
            (self.directory / "blobs").mkdir(exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"{manifests}: cannot write: {exc.strerror}") from exc
        for name in dict.fromkeys(n for n in (str(descriptor.digest), tag) if n is not None):
            self.tree.write_file(manifests / name, raw)
        fsync_dir(manifests)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nginx_config(root: Path, entries: Mapping[str, list[tuple[str, str, Digest]]]) -> str:
    """Server-level nginx directives serving the tree at ``root`` as a read-only registry.

    Use inside a ``server`` block: ``server { listen 8080; include ROOT/.pyoci/nginx.conf; }``.
    Only GET and HEAD are answered; everything outside ``/v2/`` is 404.
    """
    header = f"add_header {API_VERSION_HEADER[0]} {API_VERSION_HEADER[1]} always;"
    lines = [
        "# Generated by pyoci push (static registry); rewritten after every export.",
        f"root {_quote(str(root))};",
        "location / { return 404; }",
        f"location = /v2/ {{ types {{ }} default_type application/json; {header} return 200 '{{}}'; }}",
        "location /v2/ { return 404; }",
        f"location = /v2/_catalog {{ limit_except GET {{ deny all; }} types {{ }} default_type application/json; "
        f"{header} }}",
        'location ~ "^/v2/.+/tags/list$" { limit_except GET { deny all; } types { } '
        f"default_type application/json; {header} }}",
        'location ~ "^/v2/.+/blobs/(?<pyoci_digest>sha256:[a-f0-9]{64})$" { limit_except GET { deny all; } '
        f"types {{ }} default_type application/octet-stream; add_header Docker-Content-Digest $pyoci_digest always; "
        f"{header} }}",
    ]
    for repo, manifests in entries.items():
        for reference, media_type, digest in manifests:
            lines.append(
                f"location = {_quote(f'/v2/{repo}/manifests/{reference}')} {{ limit_except GET {{ deny all; }} "
                f"types {{ }} default_type {_quote(media_type)}; "
                f"add_header Docker-Content-Digest {_quote(str(digest))} always; {header} }}"
            )
    return "\n".join(lines) + "\n"


def content_types(entries: Mapping[str, list[tuple[str, str, Digest]]]) -> dict[str, str]:
    """Object key -> Content-Type for every object of the tree that is not a blob (blobs: octet-stream)."""
    types = {"v2/index.html": "application/json", "v2/_catalog": "application/json"}
    for repo, manifests in entries.items():
        types[f"v2/{repo}/tags/list"] = "application/json"
        for reference, media_type, _ in manifests:
            types[f"v2/{repo}/manifests/{reference}"] = media_type
    return types


def s3_upload_script(types: Mapping[str, str]) -> str:
    """A POSIX shell script uploading the tree with ``aws s3`` (works with S3, Garage, MinIO, R2).

    Usage: ``ROOT/.pyoci/s3-upload.sh s3://BUCKET[/PREFIX] [--endpoint-url URL ...]``. Blobs go up
    with ``aws s3 sync`` (already uploaded ones are skipped), then every other object with its type.
    """
    lines = [
        "#!/bin/sh",
        "# Generated by pyoci push: upload this static registry tree with per-object content types.",
        "# Usage: s3-upload.sh s3://BUCKET[/PREFIX] [extra aws options, e.g. --endpoint-url URL]",
        "# Serve the bucket as a website with index document index.html (for the /v2/ answer).",
        "set -eu",
        "dest=${1:?usage: s3-upload.sh s3://BUCKET[/PREFIX] [aws options]}",
        "shift",
        'cd "$(dirname "$0")/.."',
        "aws s3 sync v2/ \"$dest/v2/\" --size-only --exclude '*' --include '*/blobs/*' "
        '--content-type application/octet-stream "$@"',
    ]
    for key, media_type in types.items():
        quoted = shlex.quote(key)
        lines.append(f'aws s3 cp {quoted} "$dest/"{quoted} --content-type {shlex.quote(media_type)} "$@"')
    return "\n".join(lines) + "\n"


def tree_objects(root: Path | str) -> Iterator[tuple[str, Path, str]]:
    """``(key, path, content type)`` of every object of the tree under ``v2/``, blobs first.

    The content types come from ``.pyoci/s3-content-types.tsv`` (written by :meth:`StaticTree.finish`).
    """
    base = Path(root)
    types: dict[str, str] = {}
    listing = base / CONFIG_DIR / "s3-content-types.tsv"
    for line in listing.read_text().splitlines():
        key, _, value = line.partition("\t")
        types[key] = value
    files = sorted(p for p in (base / "v2").rglob("*") if p.is_file() and not p.name.startswith(TEMP_PREFIX))
    keyed = [(p.relative_to(base).as_posix(), p) for p in files]
    for key, path in sorted(keyed, key=lambda kp: kp[0] in types):
        yield key, path, types.get(key, "application/octet-stream")


def upload_s3(root: Path | str, bucket: str, *, prefix: str = "", client: Any = None) -> int:
    """Upload a finished static tree to an S3-compatible bucket with boto3 (``pip install pyoci[s3]``).

    Blobs already in the bucket with the same size are skipped; other objects are always written,
    each with its content type. Returns the number of objects uploaded.

    Args:
        root: the tree's directory.
        bucket: the bucket name.
        prefix: a key prefix (e.g. ``registry/``).
        client: a boto3 S3 client (default: ``boto3.client("s3")``, configured by the usual AWS variables).

    Raises:
        RegistryError: boto3 is not installed or an upload fails.
    """
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise RegistryError("upload to S3 needs boto3: pip install 'pyoci[s3]'") from None
    s3 = client if client is not None else boto3.client("s3")
    count = 0
    for key, path, content_type in tree_objects(root):
        full = prefix + key
        try:
            if "/blobs/" in key:
                try:
                    head = s3.head_object(Bucket=bucket, Key=full)
                    if int(head.get("ContentLength", -1)) == path.stat().st_size:
                        continue
                except ClientError:
                    pass
            s3.upload_file(str(path), bucket, full, ExtraArgs={"ContentType": content_type})
            count += 1
        except (BotoCoreError, ClientError, OSError) as exc:
            raise RegistryError(f"s3://{bucket}/{full}: upload failed: {exc}") from exc
    return count
