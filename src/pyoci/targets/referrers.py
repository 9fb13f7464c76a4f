"""Referrers: manifests that point at an image with ``subject`` (signatures, SBOMs, attestations).

Two ways a store holds them, and both count (image-spec ``manifest.md`` "subject";
distribution-spec ``spec.md`` "Listing Referrers" and "Referrers Tag Schema"):

* a manifest (or index) whose ``subject`` names the image, found through the referrers API of a
  registry, or by reading the store's manifests;
* the tag schema: a tag ``<alg>-<hex>`` holding an index of the referrers of ``<alg>:<hex>``, and
  cosign's tags ``<alg>-<hex>.sig``, ``.att``, ``.sbom`` holding a signature, attestation or SBOM.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from pyoci.descriptor import Descriptor
from pyoci.digest import Digest

REFERRERS_TAG = re.compile(r"(sha256|sha512)-([a-f0-9]{64}|[a-f0-9]{128})(?:\.[A-Za-z0-9_.-]+)?")
"""A tag of the referrers tag schema or of cosign: ``sha256-HEX`` with an optional ``.suffix``."""


def referrer_subject(tag: str) -> Digest | None:
    """The digest a referrers-schema tag names (``sha256-HEX[.suffix]``), or None for another tag."""
    match = REFERRERS_TAG.fullmatch(tag)
    return Digest(match.group(1), match.group(2)) if match is not None else None


@runtime_checkable
class Referrers(Protocol):
    """A source that can list the referrers of a digest (an optional capability of a Source)."""

    def referrers(self, subject: Digest) -> list[tuple[Descriptor, str | None]]:
        """The manifests that refer to ``subject``, each with the tag it is held under (None: by digest only).

        Raises:
            PyociError: the store cannot be read.
        """
        ...
