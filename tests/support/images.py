"""Test images: the fixtures converted to layouts, and a multi-arch layout built from the four of them."""

from __future__ import annotations

from pathlib import Path

from pyoci import convert, mediatype
from pyoci.descriptor import REF_NAME
from pyoci.layout.store import ImageLayout
from pyoci.manifest import Index
from support.paths import FIXTURES

ARCHES = ("amd64", "arm64", "armv7", "386")


def single_layout(directory: Path) -> Path:
    """hello-amd64.tar as ``DIR`` tagged ``1.0``."""
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{directory}:1.0")
    return directory


def multi_layout(directory: Path) -> Path:
    """The four hello-*.tar as one image index tagged ``multi`` (with ``pyoci merge`` when it exists)."""
    archives = [str(FIXTURES / f"hello-{arch}.tar") for arch in ARCHES]
    try:
        from pyoci.commands.merge import merge
    except ImportError:
        merge = None
    if merge is not None:
        merge(archives, f"oci:{directory}:multi")
        return directory
    children = []
    for arch, archive in zip(ARCHES, archives, strict=True):
        children.append(convert(archive, f"oci:{directory}:{arch}").images[0].manifest)
    layout = ImageLayout.open(directory)
    index = Index.build(children)
    descriptor = layout.put_blob(index.raw, mediatype.IMAGE_INDEX).with_annotations({REF_NAME: "multi"})
    layout.update_index(lambda entries: [descriptor])
    return directory


def platform_layouts(base: Path) -> dict[str, Path]:
    """``single`` (amd64, tag 1.0), ``multi`` (4 platforms), ``pair`` (amd64 + arm64) and ``triple`` (+ armv7)."""
    from pyoci.commands.merge import merge

    found = {"single": single_layout(base / "single"), "multi": multi_layout(base / "multi")}
    for name, arches in (("pair", ("amd64", "arm64")), ("triple", ("amd64", "arm64", "armv7"))):
        merge([str(FIXTURES / f"hello-{arch}.tar") for arch in arches], f"oci:{base / name}:{name}")
        found[name] = base / name
    return found
