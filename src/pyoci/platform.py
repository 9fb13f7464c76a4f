"""Platforms (image-spec ``image-index.md`` "platform" and ``config.md``): parse, print, normalise, match.

Aliases are normalised as containerd's ``platforms.Normalize`` does: ``x86_64``/``x86-64`` -> ``amd64``,
``aarch64`` -> ``arm64``, ``armhf``/``armel``/``armv7l``... -> ``arm`` with a variant, ``i386``/``i686``
-> ``386``. ``arm64`` with variant ``v8`` equals ``arm64`` with no variant when matching.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyoci.errors import FormatError

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv5l": ("arm", "v5"),
    "armv6l": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv8l": ("arm", "v8"),
    "i386": ("386", ""),
    "i486": ("386", ""),
    "i586": ("386", ""),
    "i686": ("386", ""),
}
_ARM_VARIANTS = {"5": "v5", "6": "v6", "7": "v7", "8": "v8"}
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Platform:
    """The platform an image runs on.

    Attributes:
        os: operating system, e.g. ``"linux"``.
        architecture: CPU architecture in Go's terms, e.g. ``"amd64"``, ``"arm64"``.
        variant: CPU variant, e.g. ``"v7"``; empty when none.
        os_version: ``os.version``, e.g. a Windows build; empty when none.
        os_features: ``os.features``; empty when none.
    """

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/architecture[/variant]`` (as ``docker --platform`` takes it) and normalise it.

        Raises:
            FormatError: not two or three components of ``[A-Za-z0-9_.-]`` that start with a letter or digit.
        """
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(_COMPONENT.fullmatch(p) for p in parts):
            raise FormatError(f"platform {text!r}: expected os/architecture[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "").normalized()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Platform:
        """Read the platform fields of an image config (image-spec ``config.md``), normalised.

        A null ``variant``, ``os.version`` or ``os.features`` is read as absent, as Go reads it.

        Raises:
            FormatError: ``os`` or ``architecture`` is missing or not a string; ``variant`` or
                ``os.version`` is not a string; ``os.features`` is not an array of strings.
        """
        os_name = config.get("os")
        arch = config.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
            raise FormatError("image config: 'os' and 'architecture' must be non-empty strings")
        variant, os_version, features = config.get("variant"), config.get("os.version"), config.get("os.features")
        if not isinstance(variant, str | None) or not isinstance(os_version, str | None):
            raise FormatError("platform: 'variant' and 'os.version' must be strings")
        if not isinstance(features, list | None) or not all(isinstance(f, str) for f in features or ()):
            raise FormatError("platform: 'os.features' must be an array of strings")
        return cls(os_name, arch, variant or "", os_version or "", tuple(features or ())).normalized()

    def normalized(self) -> Platform:
        """Return this platform with containerd's aliases resolved and names in lower case."""
        os_name = self.os.lower()
        arch = self.architecture.lower()
        variant = self.variant.lower()
        alias = _ARCH_ALIASES.get(arch)
        if alias is not None:
            arch, alias_variant = alias
            variant = variant or alias_variant
        if arch == "arm":
            variant = _ARM_VARIANTS.get(variant, variant)
        elif arch == "arm64" and variant in ("8", "v8"):
            variant = "v8"
        return Platform(os_name, arch, variant, self.os_version, self.os_features)

    def overridden_by(self, requested: Platform, where: str) -> Platform:
        """Return this platform (an image config's) with ``requested``'s variant: the ``--platform`` override rule.

        An override may set or correct the variant a config lacks or misstates (Nix writes ``arm``
        without one); os and architecture must agree with the config (image-spec ``config.md``:
        they describe the binaries), and ``os.version``/``os.features`` are kept.

        Raises:
            FormatError: ``requested`` names another os or architecture (``where`` opens the message).
        """
        if (requested.os, requested.architecture) != (self.os, self.architecture):
            raise FormatError(
                f"{where}: --platform {requested} contradicts the image config's {self.os}/{self.architecture}"
            )
        return Platform(self.os, self.architecture, requested.variant, self.os_version, self.os_features)

    def matches(self, other: Platform) -> bool:
        """True when both name the same platform after normalising (arm64 == arm64/v8)."""
        return self._key() == other._key()

    def _key(self) -> tuple[str, str, str, str]:
        norm = self.normalized()
        variant = "" if norm.architecture == "arm64" and norm.variant == "v8" else norm.variant
        return (norm.os, norm.architecture, variant, norm.os_version)

    def to_json(self) -> dict[str, Any]:
        """Return the descriptor ``platform`` object with the spec's key names; empty fields left out."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def host(cls) -> Platform:
        """The platform of this machine (``linux/amd64``, ``linux/arm64``...), normalised."""
        import platform as machine

        return cls(machine.system().lower() or "linux", machine.machine() or "amd64").normalized()

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text
