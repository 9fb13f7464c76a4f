"""Validation of JSON documents against the OCI image-spec JSON schemas (draft-04), when available.

pyoci does not ship the schema files. They are looked up in, in order: the directory passed by the
caller, ``$PYOCI_OCI_SCHEMAS``, and the copy Debian's ``golang-github-opencontainers-image-spec-dev``
package installs. ``$ref`` URLs are resolved by their last path segment to a file of that directory.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

ENV_VAR = "PYOCI_OCI_SCHEMAS"
DEBIAN_SCHEMAS = Path("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema")

LAYOUT_SCHEMA = "image-layout-schema.json"
INDEX_SCHEMA = "image-index-schema.json"
MANIFEST_SCHEMA = "image-manifest-schema.json"
CONFIG_SCHEMA = "config-schema.json"

EMPTY_LAYERS_EXEMPTION = (
    "image manifests with an empty 'layers' list are accepted (Docker and skopeo write them for "
    "zero-layer images), although schema v1.1.1 says minItems 1"
)


def find_schema_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the first schema directory that holds ``image-manifest-schema.json``, or None."""
    candidates = [explicit, os.environ.get(ENV_VAR), DEBIAN_SCHEMAS]
    for candidate in candidates:
        if candidate and (Path(candidate) / MANIFEST_SCHEMA).is_file():
            return Path(candidate)
    return None


class SchemaSet:
    """Validators for the OCI schema files of one directory.

    Args:
        directory: holds the image-spec ``schema/*.json`` files.
    """

    def __init__(self, directory: Path) -> None:
        # jsonschema is imported here, not at module level: it costs ~0.1 s of start-up for every command
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        def retrieve(uri: str) -> Resource[Any]:
            name = uri.rstrip("/").rsplit("/", 1)[-1]
            return Resource.from_contents(_load(directory / name), default_specification=DRAFT4)

        self.directory = directory
        self._registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]

    def errors(self, schema_file: str, document: Any) -> list[str]:
        """Return one message per schema violation of ``document`` (empty when valid).

        A manifest's empty ``layers`` list is not reported (see :data:`EMPTY_LAYERS_EXEMPTION`).
        """
        from jsonschema import Draft4Validator

        validator = Draft4Validator(
            _load(self.directory / schema_file),
            registry=self._registry,
            format_checker=Draft4Validator.FORMAT_CHECKER,
        )
        messages = []
        for error in validator.iter_errors(document):
            path = "/".join(str(p) for p in error.absolute_path)
            if schema_file == MANIFEST_SCHEMA and path == "layers" and error.validator == "minItems":
                continue
            messages.append(f"{path or '(document)'}: {error.message}")
        return messages


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text())
