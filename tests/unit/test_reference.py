"""The one reference grammar: a round-trip table, known-bad inputs, roles, and what commands refuse."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import FIXTURES, run_pyoci

from pyoci import convert
from pyoci.digest import Digest
from pyoci.errors import FormatError
from pyoci.reference import (
    ArchiveReference,
    BucketReference,
    ImageName,
    LayoutReference,
    StaticReference,
    expect,
    layout_directory,
    parse,
)

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker-archive:x.tar", ArchiveReference("x.tar")),
        ("docker-archive:x.tar:@2", ArchiveReference("x.tar", position=2)),
        ("docker-archive:-", ArchiveReference("-")),
        ("oci:/tmp/o", LayoutReference("/tmp/o")),
        ("oci:/tmp/o:v1.0", LayoutReference("/tmp/o", "v1.0")),
        (f"oci:/tmp/o@sha256:{HEX}", LayoutReference("/tmp/o", digest=Digest("sha256", HEX))),
        ("oci-archive:o.tar:v1", LayoutReference("o.tar", "v1", archive=True)),
        ("docker://ghcr.io/o/app:1", ImageName("ghcr.io", "o/app", "1")),
        ("docker://alpine", ImageName("docker.io", "library/alpine")),
        (f"docker://127.0.0.1:5000/a@sha256:{HEX}", ImageName("127.0.0.1:5000", "a", None, Digest("sha256", HEX))),
        ("static:site", StaticReference(Path("site"))),
        ("static:site:me/app:1", StaticReference(Path("site"), "me/app", "1")),
        ("s3://bucket", BucketReference("bucket")),
        ("s3://my.bucket/a/b/", BucketReference("my.bucket", "a/b/")),
    ],
)
def test_round_trip(text: str, expected: object) -> None:
    parsed = parse(text)
    assert parsed == expected
    assert parse(parsed.uri if isinstance(parsed, ImageName) else str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("docker-archive:", "empty path"),
        ("docker-archive:x.tar:@x", "image number"),
        ("docker-archive:x.tar:@٣", "image number"),
        ("docker-archive:x:foo", "NAME:TAG"),
        ("oci:", "empty path"),
        ("oci:d:bad tag", "invalid tag"),
        ("oci:d:x\n", "invalid tag"),
        ("oci:d:../../x", "invalid tag"),
        ("oci:d@sha256:short", "digest"),
        ("docker://Upper/Case", "invalid repository"),
        ("docker://host:/x", "invalid registry"),
        ("docker://host:0/x", "invalid registry 'host:0'"),
        ("docker://host:65536/x", "invalid registry 'host:65536'"),
        ("docker://host:" + "9" * 30 + "/x", "invalid registry"),
        ("docker://alpine:3\n", "invalid tag"),
        ("docker://h.io/x:Ab+c", r"invalid tag 'Ab\+c' \(up to 128 letters, digits, '_', '.' and '-', not starting"),
        ("docker://a\n/b:1", "invalid repository"),
        ("static:", "expected static:DIR"),
        ("static:dir:Bad/Repo", "invalid repository"),
        ("static:dir:a\n", "invalid repository"),
        ("s3://B", "invalid bucket"),
        ("ftp://x/y", "unknown transport ftp://"),
        ("docker-daemon:alpine", "not supported"),
        ("containers-storage:alpine", "not supported"),
    ],
)
def test_known_bad(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse(text)


def test_bare_arguments_by_role(tmp_path: Path) -> None:
    (tmp_path / "a:b:c.tar").touch()
    assert parse(f"{tmp_path}/a:b:c.tar") == ArchiveReference(f"{tmp_path}/a:b:c.tar")  # a path is taken whole
    assert parse(f"{tmp_path}:1.0") == LayoutReference(str(tmp_path), "1.0")  # a source DIR:TAG
    with pytest.raises(FormatError, match=r"^reference 'oci-archve:a.tar:1': no such file or directory, and oci-"):
        parse("oci-archve:a.tar:1")
    with pytest.raises(FormatError, match="no such file or directory, and x: is not a transport"):
        parse("x:missing.tar", bare="archive")
    archive = tmp_path / "app.tar"
    archive.touch()
    hint = f"no such file; an image of the archive {archive} is docker-archive:{archive}:a:1"
    with pytest.raises(FormatError, match=re.escape(hint)):
        parse(f"{archive}:a:1")
    assert parse("-") == ArchiveReference("-")
    assert parse(str(tmp_path)) == LayoutReference(str(tmp_path))  # a directory is a layout
    assert parse("out/x", bare="layout") == LayoutReference("out/x")
    assert parse("user/app:1", bare="registry") == ImageName("docker.io", "user/app", "1")
    assert parse(Path("oci:looks-like-a-transport")) == ArchiveReference("oci:looks-like-a-transport")
    assert parse(os.fspath(tmp_path), bare="archive") == ArchiveReference(str(tmp_path))
    with pytest.raises(FormatError, match="name a transport"):
        parse("x", bare="none")


def test_layout_directory_takes_dir_tag(tmp_path: Path) -> None:
    assert layout_directory(f"{tmp_path}:1.0", "verify reads") == LayoutReference(str(tmp_path), "1.0")
    assert layout_directory(str(tmp_path), "verify reads") == LayoutReference(str(tmp_path))
    with pytest.raises(FormatError, match=r"^docker://docker.io/x/y: verify reads an OCI layout directory"):
        layout_directory("docker://x/y", "verify reads")
    with pytest.raises(FormatError, match="an OCI layout directory"):
        layout_directory("oci-archive:x.tar", "gc works on")


def test_expect_names_the_command_that_takes_it() -> None:
    with pytest.raises(FormatError, match=r"^docker://docker.io/h/x: convert writes oci:, oci-archive: references, not docker://;"):
        expect(parse("docker://h/x"), ("oci", "oci-archive"), "convert writes", "use push")


@pytest.mark.parametrize("destination", ["docker://127.0.0.1:5000/x", "static:site:x"])
def test_convert_to_a_registry_or_tree_writes_nothing(tmp_path: Path, destination: str) -> None:
    os.chdir(tmp_path)
    proc = run_pyoci("convert", str(FIXTURES / "hello-amd64.tar"), destination, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and "use 'pyoci push'" in err, err
    assert list(tmp_path.iterdir()) == []


def test_commands_take_paths(tmp_path: Path) -> None:
    result = convert(FIXTURES / "hello-amd64.tar", tmp_path / "out")
    assert result.destination == tmp_path / "out" and (tmp_path / "out" / "index.json").is_file()
