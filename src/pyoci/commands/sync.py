"""``pyoci sync``: publish a static registry tree to S3-compatible storage (S3, Garage, MinIO, R2) with boto3.

What goes up is the tree's publishing plan (:mod:`pyoci.targets.publish`): every object under its
URL path as key (below ``s3://BUCKET/PREFIX/``), with its ``Content-Type``, so that the bucket served
as a website answers pulls (a client hashes what it receives: a website cannot send
``Docker-Content-Digest``). Only what is missing or changed goes up, compared with one listing of
the bucket (``ListObjectsV2`` under ``PREFIX/v2/``):

* a content-addressed object (a blob, a manifest by digest: its key names its bytes) is skipped when
  the bucket holds the key with the same size (a manifest: and the same MD5 ``ETag``);
* a tag or a listing is skipped when the ``ETag`` is the MD5 of its bytes;
* a blob the bucket holds under another repository's key is copied inside the bucket (no bytes sent).

Order: the plan's phases one after another (blobs, manifests, indexes, tags, ``tags/list``,
``_catalog``), each phase ``jobs`` objects at a time; a phase starts only when the one before it has
completed, so a reader of the bucket sees children before parents. Then what the tree no longer
holds is deleted, parents first: tags and listings, manifests by digest, blobs. Every key under
``PREFIX/v2/`` belongs to the tree (a key the tree does not hold there is deleted); keys outside it
are never touched. Blobs are streamed from their files and checked against their digest on the way:
a blob whose bytes differ fails before its upload completes.

The tree's writer lock is held for the whole run: exports may run meanwhile, ``pyoci gc`` waits.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyoci.errors import FormatError, RegistryError
from pyoci.progress import NoProgress, Progress
from pyoci.reference import BucketReference, StaticReference, expect, parse
from pyoci.streams import VerifyingReader
from pyoci.targets.publish import BLOB, PHASES, TreeObject, snapshot
from pyoci.targets.static import StaticTree

UPLOAD = "upload"
COPY = "copy"
DELETE = "delete"
DEFAULT_JOBS = 8


@dataclass(frozen=True)
class SyncAction:
    """One object written to or deleted from the bucket (or that would be, in a dry run).

    Attributes:
        action: ``"upload"``, ``"copy"`` (from another key of the bucket) or ``"delete"``.
        key: the full key.
        size: bytes (uploads and copies; 0 for a delete).
        content_type: the ``Content-Type`` stored (empty for a delete).
        source: for a copy, the key copied from.
    """

    action: str
    key: str
    size: int = 0
    content_type: str = ""
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out: dict[str, Any] = {"action": self.action, "key": self.key, "size": self.size}
        if self.content_type:
            out["contentType"] = self.content_type
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync` did (or would do, when ``dry_run``).

    Attributes:
        source: the tree's directory.
        destination: ``s3://BUCKET[/PREFIX]``.
        actions: uploads and copies in publishing order, then deletes.
        skipped: objects the bucket already held unchanged.
        dry_run: True when nothing was written or deleted.
    """

    source: Path
    destination: str
    actions: tuple[SyncAction, ...]
    skipped: int
    dry_run: bool

    def count(self, action: str) -> int:
        """How many actions of kind ``action``."""
        return sum(1 for a in self.actions if a.action == action)

    @property
    def bytes_uploaded(self) -> int:
        """Bytes sent (copies inside the bucket are not counted)."""
        return sum(a.size for a in self.actions if a.action == UPLOAD)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``uploaded``, ``copied``, ``skipped``, ``deleted``, ``bytes``, ``actions``)."""
        return {
            "source": str(self.source),
            "destination": self.destination,
            "dry_run": self.dry_run,
            "uploaded": self.count(UPLOAD),
            "copied": self.count(COPY),
            "skipped": self.skipped,
            "deleted": self.count(DELETE),
            "bytes": self.bytes_uploaded,
            "actions": [a.to_json() for a in self.actions],
        }


def s3_client(endpoint_url: str | None = None, jobs: int = DEFAULT_JOBS) -> Any:
    """A boto3 S3 client configured by the usual AWS variables and files (credentials, region).

    With ``endpoint_url`` (Garage, MinIO, a local server) requests use path-style addressing, and
    checksums are sent only where the API requires them, which S3-compatible servers accept.

    Raises:
        RegistryError: boto3 is not installed.
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise RegistryError("sync to S3 needs boto3: pip install 'pyoci[s3]'") from None
    options: dict[str, Any] = {
        "max_pool_connections": jobs,
        "retries": {"max_attempts": 5, "mode": "standard"},
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if endpoint_url:
        options["s3"] = {"addressing_style": "path"}
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=Config(**options))


def sync(
    source: str | StaticReference,
    destination: str | BucketReference,
    *,
    endpoint_url: str | None = None,
    dry_run: bool = False,
    jobs: int = DEFAULT_JOBS,
    client: Any = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Make ``s3://BUCKET/PREFIX/v2/`` hold exactly the static tree's objects (see the module docstring).

    Args:
        source: ``static:DIR`` (the whole tree).
        destination: ``s3://BUCKET[/PREFIX]``.
        endpoint_url: the S3 API endpoint of a non-AWS server, e.g. ``http://localhost:3900`` (Garage).
        dry_run: only work out what would be uploaded, copied and deleted.
        jobs: objects transferred at once (1-64).
        client: a boto3 S3 client (default: :func:`s3_client`).
        progress: receives the bytes sent, as one bar for the whole run.

    Returns:
        The actions taken, in order, and the count of objects skipped.

    Raises:
        FormatError: a malformed reference or ``jobs`` out of range.
        LayoutError: the source is not a static tree.
        DigestMismatchError: a local blob differs from its name (nothing of it is stored).
        RegistryError: boto3 missing, no credentials, no such bucket, or a request that failed after retries.
    """
    tree_ref = expect(parse(source, bare="none"), ("static",), "sync reads")
    bucket_ref = expect(parse(destination, bare="none"), ("s3",), "sync writes")
    assert isinstance(tree_ref, StaticReference) and isinstance(bucket_ref, BucketReference)  # expect() allowed
    if tree_ref.repository is not None:
        raise FormatError(f"{tree_ref}: sync publishes a whole tree; give static:DIR")
    if not 1 <= jobs <= 64:
        raise FormatError(f"--jobs {jobs}: expected 1 to 64")
    tree = StaticTree(tree_ref.root)
    tree.check_exists()
    bucket = _Bucket(client if client is not None else s3_client(endpoint_url, jobs), bucket_ref)
    with tree.writer_lock():
        try:
            objects = snapshot(tree)
        except OSError as exc:
            raise RegistryError(f"{exc.filename}: cannot read: {exc.strerror}") from exc
        remote = bucket.listing()
        steps, skipped = _plan(objects, remote, bucket_ref.prefix)
        if not dry_run:
            _execute(bucket, steps, jobs, progress or NoProgress())
    return SyncResult(tree.root, str(bucket_ref), tuple(s.action for s in steps), skipped, dry_run)


@dataclass(frozen=True)
class _Step:
    """An action with its place in the order and, for uploads and copies, the object."""

    order: tuple[int, int]
    action: SyncAction
    obj: TreeObject | None = None


def _plan(objects: list[TreeObject], remote: dict[str, tuple[int, str]], prefix: str) -> tuple[list[_Step], int]:
    """``(steps, skipped)``: uploads and copies in publishing order, then deletes, parents first."""
    by_blob_name: dict[tuple[str, int], str] = {}
    for key, (size, _) in sorted(remote.items()):
        if "/blobs/" in key:
            by_blob_name.setdefault((key.rsplit("/", 1)[1], size), key)
    steps: list[_Step] = []
    skipped = 0
    for obj in objects:
        key = prefix + obj.key
        held = remote.get(key)
        if held is not None and _unchanged(obj, *held):
            skipped += 1
            continue
        copy_from = by_blob_name.get((key.rsplit("/", 1)[1], obj.size)) if obj.phase == BLOB else None
        if copy_from is not None and copy_from != key:
            steps.append(_Step(obj.order, SyncAction(COPY, key, obj.size, obj.content_type, copy_from), obj))
        else:
            steps.append(_Step(obj.order, SyncAction(UPLOAD, key, obj.size, obj.content_type), obj))
    local = {prefix + obj.key for obj in objects}
    deletes = [_Step((len(PHASES) + _delete_rank(key[len(prefix) :]), 0), SyncAction(DELETE, key)) for key in remote]
    steps.extend(sorted((s for s in deletes if s.action.key not in local), key=lambda s: (s.order, s.action.key)))
    return steps, skipped


def _unchanged(obj: TreeObject, size: int, etag: str) -> bool:
    """True when the bucket's object (``size``, ``etag``) already holds ``obj``."""
    if size != obj.size:
        return False
    if obj.data is None:
        return True  # a blob: the key names the content, and the size agrees
    return etag == hashlib.md5(obj.data, usedforsecurity=False).hexdigest()


def _delete_rank(key: str) -> int:
    """0 for tags, listings and anything else; 1 for manifests by digest; 2 for blobs (parents go first)."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[-2] == "blobs":
        return 2
    if len(parts) >= 3 and parts[-2] == "manifests" and ":" in parts[-1]:
        return 1
    return 0


def _boto_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


class _Bucket:
    """The bucket side of a sync: one listing, then uploads, copies and deletes (each raising RegistryError)."""

    def __init__(self, client: Any, ref: BucketReference) -> None:
        self.client = client
        self.ref = ref

    def _failed(self, exc: Exception, what: str) -> RegistryError:
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return RegistryError(
                f"s3://{self.ref.bucket}: no credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            )
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            if error.get("Code") == "NoSuchBucket":
                return RegistryError(f"s3://{self.ref.bucket}: no such bucket")
            return RegistryError(f"{what}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": "))
        return RegistryError(f"{what}: {exc}")

    def listing(self) -> dict[str, tuple[int, str]]:
        """``{key: (size, ETag without quotes)}`` of every object under ``PREFIX/v2/``.

        Raises:
            RegistryError: the listing failed (no credentials, no such bucket, refused).
        """
        out: dict[str, tuple[int, str]] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.ref.bucket, Prefix=self.ref.prefix + "v2/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    out[item["Key"]] = (int(item["Size"]), str(item.get("ETag", "")).strip('"'))
        except _boto_errors() as exc:
            raise self._failed(exc, f"{self.ref}: cannot list the bucket") from exc
        return out

    def apply(self, step: _Step, advance: Callable[[int], None]) -> None:
        """Carry out one step.

        Raises:
            DigestMismatchError: a blob's bytes differ from its name (its upload is abandoned).
            RegistryError: the request failed after boto3's retries.
        """
        from boto3.s3.transfer import TransferConfig

        action, obj, bucket = step.action, step.obj, self.ref.bucket
        inline = TransferConfig(use_threads=False)  # this run's pool is the parallelism; one part in memory
        try:
            if action.action == DELETE:
                self.client.delete_object(Bucket=bucket, Key=action.key)
            elif action.action == COPY:
                source = {"Bucket": bucket, "Key": action.source}
                extra = {"ContentType": action.content_type, "MetadataDirective": "REPLACE"}
                self.client.copy(source, bucket, action.key, ExtraArgs=extra, Config=inline)
            elif obj is not None and obj.data is not None:
                self.client.put_object(Bucket=bucket, Key=action.key, Body=obj.data, ContentType=action.content_type)
                advance(len(obj.data))
            elif obj is not None and obj.path is not None and obj.digest is not None:
                with open(obj.path, "rb") as f:
                    reader = VerifyingReader(f, obj.digest, obj.size, str(obj.path))
                    extra = {"ContentType": action.content_type}
                    self.client.upload_fileobj(
                        reader, bucket, action.key, ExtraArgs=extra, Callback=advance, Config=inline
                    )
        except OSError as exc:
            raise RegistryError(f"{exc.filename or action.key}: cannot read: {exc.strerror or exc}") from exc
        except _boto_errors() as exc:
            raise self._failed(exc, f"s3://{bucket}/{action.key}: {action.action} failed") from exc


def _execute(bucket: _Bucket, steps: list[_Step], jobs: int, progress: Progress) -> None:
    """Run ``steps`` order by order, each order ``jobs`` at a time; stop at the first failure."""
    total = sum(s.action.size for s in steps if s.action.action == UPLOAD)
    lock = threading.Lock()

    def advance(count: int) -> None:
        with lock:
            progress.advance(count)

    progress.start(f"sync {bucket.ref}", total)
    try:
        with ThreadPoolExecutor(jobs) as pool:
            for group in _groups(steps):
                futures: list[Future[None]] = [pool.submit(bucket.apply, step, advance) for step in group]
                _, pending = wait(futures, return_when=FIRST_EXCEPTION)
                for future in pending:
                    future.cancel()
                wait(futures)
                for future in futures:
                    if not future.cancelled():
                        future.result()
    finally:
        progress.finish()


def _groups(steps: Iterable[_Step]) -> list[list[_Step]]:
    """Consecutive steps of one order (steps arrive sorted by order)."""
    groups: list[list[_Step]] = []
    for step in steps:
        if groups and groups[-1][0].order == step.order:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups
