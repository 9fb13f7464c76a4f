"""Core value types: parse/print round trips and rejected inputs."""

from __future__ import annotations

import pytest

from pyoci.digest import Digest, Digester
from pyoci.errors import FormatError, StreamNotConsumedError
from pyoci.platform import Platform
from pyoci.reference import ArchiveReference, ImageName, LayoutReference, parse

HEX = "a" * 64


@pytest.mark.parametrize("text", [f"sha256:{HEX}", f"sha512:{'b' * 128}"])
def test_digest_round_trip(text: str) -> None:
    assert str(Digest.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["sha256", f"sha256:{HEX[:-1]}", f"sha256:{HEX.upper()}", f"md5:{HEX}", f"sha256:{'g' * 64}", ""]
)
def test_digest_rejects(text: str) -> None:
    with pytest.raises(FormatError):
        Digest.parse(text)


def test_digester_counts_and_requires_finish() -> None:
    d = Digester()
    d.update(b"abc")
    with pytest.raises(StreamNotConsumedError):
        _ = d.digest
    assert d.finish() == Digest.parse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert d.size == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armv7l", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/i386", "linux/386"),
        ("Linux/AMD64", "linux/amd64"),
    ],
)
def test_platform_normalises(text: str, expected: str) -> None:
    assert str(Platform.parse(text)) == expected


def test_platform_arm64_v8_matches_arm64() -> None:
    assert Platform.parse("linux/arm64/v8").matches(Platform.parse("linux/arm64"))
    assert not Platform.parse("linux/arm/v6").matches(Platform.parse("linux/arm/v7"))


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"])
def test_platform_rejects(text: str) -> None:
    with pytest.raises(FormatError):
        Platform.parse(text)


def test_platform_json_uses_spec_keys() -> None:
    p = Platform.from_config({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"})
    assert p.to_json() == {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app.tar", ArchiveReference("app.tar")),
        ("docker-archive:x.tar", ArchiveReference("x.tar")),
        ("docker-archive:x.tar:@2", ArchiveReference("x.tar", position=2)),
        ("docker-archive:x.tar:foo:1", ArchiveReference("x.tar", name=ImageName("docker.io", "library/foo", "1"))),
        ("oci:/tmp/o", LayoutReference("/tmp/o")),
        ("oci:/tmp/o:v1", LayoutReference("/tmp/o", "v1")),
        ("oci-archive:o.tar:v1", LayoutReference("o.tar", "v1", archive=True)),
    ],
)
def test_parse_reference(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["docker-archive:", "docker-archive:x.tar:@x", "oci:", "oci:d:bad tag", "docker-archive:x:foo", "a:b:c.tar"],
)
def test_parse_reference_rejects(text: str) -> None:
    with pytest.raises(FormatError):
        parse(text)


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("alpine", "docker.io/library/alpine", "alpine"),
        ("alpine:3", "docker.io/library/alpine:3", "alpine:3"),
        ("user/app:1", "docker.io/user/app:1", "user/app:1"),
        ("localhost:5000/app:1", "localhost:5000/app:1", "localhost:5000/app:1"),
        ("example.com/a/b:v", "example.com/a/b:v", "example.com/a/b:v"),
        (f"ghcr.io/o/r@sha256:{HEX}", f"ghcr.io/o/r@sha256:{HEX}", f"ghcr.io/o/r@sha256:{HEX}"),
    ],
)
def test_image_name(text: str, full: str, familiar: str) -> None:
    name = ImageName.parse(text)
    assert str(name) == full
    assert name.familiar() == familiar


@pytest.mark.parametrize("text", ["UPPER/case", "app:bad tag", "a//b", "app:", f"app@sha256:{HEX[:5]}"])
def test_image_name_rejects(text: str) -> None:
    with pytest.raises(FormatError):
        ImageName.parse(text)
