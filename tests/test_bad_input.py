"""Bad input: one clear line naming the file and the problem, exit 1, no traceback, nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, run_pyoci
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.archives import config_for, docker_archive, layer_tar, simple_archive
from support.layouts import snapshot

from pyoci import ArchiveError, FormatError, LayoutError, PyociError, convert


def write(tmp_path: Path, data: bytes, name: str = "in.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_clean_failure(tmp_path: Path, source: Path | str, message: str, stdin: bytes | None = None) -> None:
    out = tmp_path / "out"
    existing = tmp_path / "existing"
    convert(str(FIXTURES / "hello-amd64.tar"), str(existing))
    before = snapshot(existing)
    for dest in (out, existing):
        proc = run_pyoci("convert", str(source), f"oci:{dest}:t", input=stdin, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1, err
        assert "Traceback" not in err
        assert err.startswith("pyoci: error: ") and err.count("\n") == 1, err
        assert message in err, err
        assert str(source) in err or (source == "-" and "stdin" in err), err
    assert not out.exists()
    assert snapshot(existing) == before


def test_truncated_archive(tmp_path: Path) -> None:
    data = (FIXTURES / "hello-amd64.tar").read_bytes()
    assert_clean_failure(tmp_path, write(tmp_path, data[: len(data) // 3]), "truncated tar archive")


def test_truncated_gzip_archive(tmp_path: Path) -> None:
    data = (FIXTURES / "hello-amd64.tar.gz").read_bytes()
    assert_clean_failure(tmp_path, write(tmp_path, data[:-100]), "truncated or corrupt")


def test_missing_manifest(tmp_path: Path) -> None:
    layer = layer_tar({"a": b"x"})
    path = write(tmp_path, docker_archive([("layer.tar", layer, None)]))
    assert_clean_failure(tmp_path, path, "no manifest.json")


def test_config_absent(tmp_path: Path) -> None:
    layer = layer_tar({"a": b"x"})
    manifest = json.dumps([{"Config": "missing.json", "RepoTags": None, "Layers": ["l.tar"]}]).encode()
    path = write(tmp_path, docker_archive([("l.tar", layer, None), ("manifest.json", manifest, None)]))
    assert_clean_failure(tmp_path, path, "member 'missing.json' is missing")


def _with_link(target: str) -> bytes:
    layer = layer_tar({"a": b"x" * 5000})
    config = config_for([layer])
    manifest = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["dir/layer.tar"]}]).encode()
    return docker_archive(
        [
            ("real.tar", layer, None),
            ("dir/layer.tar", None, target),
            ("c.json", config, None),
            ("manifest.json", manifest, None),
        ]
    )


def test_dangling_symlink(tmp_path: Path) -> None:
    assert_clean_failure(tmp_path, write(tmp_path, _with_link("../nowhere.tar")), "points to missing member")


def test_looping_symlink(tmp_path: Path) -> None:
    assert_clean_failure(tmp_path, write(tmp_path, _with_link("layer.tar")), "loops")


def test_symlink_escaping(tmp_path: Path) -> None:
    assert_clean_failure(tmp_path, write(tmp_path, _with_link("../../etc/passwd")), "escapes the archive")


def test_member_name_escaping(tmp_path: Path) -> None:
    layer = layer_tar({"a": b"x"})
    path = write(tmp_path, docker_archive([("../evil.tar", layer, None)]))
    assert_clean_failure(tmp_path, path, "escapes the archive")


def test_layer_not_matching_diff_id(tmp_path: Path) -> None:
    layer = layer_tar({"a": b"x" * 9000})
    config = config_for([layer_tar({"a": b"y" * 9000})])
    manifest = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["l.tar"]}]).encode()
    path = write(
        tmp_path, docker_archive([("l.tar", layer, None), ("c.json", config, None), ("manifest.json", manifest, None)])
    )
    assert_clean_failure(tmp_path, path, "diff_id mismatch")


def test_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path, docker_archive([("manifest.json", b"[{not json", None)]))
    assert_clean_failure(tmp_path, path, "invalid JSON")


def test_not_an_archive(tmp_path: Path) -> None:
    assert_clean_failure(tmp_path, write(tmp_path, b"hello, this is not a tar file\n" * 40), "not a tar archive")


def test_empty_stdin(tmp_path: Path) -> None:
    assert_clean_failure(tmp_path, "-", "empty input", stdin=b"")


def test_missing_file(tmp_path: Path) -> None:
    assert_clean_failure(tmp_path, tmp_path / "nope.tar", "cannot open")


def test_destination_not_a_layout(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep")
    with pytest.raises(LayoutError, match="not empty and is not an OCI image layout"):
        convert(str(FIXTURES / "hello-amd64.tar"), str(dest))
    assert [p.name for p in dest.iterdir()] == ["precious.txt"]


def test_bad_options(tmp_path: Path) -> None:
    proc = run_pyoci(
        "convert",
        "--compression",
        "zstd",
        "--level",
        "40",
        str(FIXTURES / "hello-amd64.tar"),
        str(tmp_path / "o"),
        check=False,
    )
    assert proc.returncode == 1 and "zstd levels are 1..19" in proc.stderr.decode()
    with pytest.raises(FormatError):
        convert("oci:somewhere", str(tmp_path / "o"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("copy", "a"), "Missing argument 'DESTINATION'. (see 'pyoci copy -h')"),
        (("push", "--bogus", "a", "b"), "No such option '--bogus'"),
        (("nope",), "No such command 'nope'. (see 'pyoci -h')"),
        (("convert", "--threads", "x", "a", "b"), "Invalid value for '--threads'"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    proc = run_pyoci(*args, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and err.startswith("pyoci: error: "), err
    assert message in err and proc.stdout == b""


def test_manifest_first_works_too(tmp_path: Path) -> None:
    a = convert(str(write(tmp_path, simple_archive(manifest_last=False), "a.tar")), str(tmp_path / "a"))
    b = convert(str(write(tmp_path, simple_archive(manifest_last=True), "b.tar")), str(tmp_path / "b"))
    assert a.images[0].manifest.digest == b.images[0].manifest.digest


# --- property-based: mutated and truncated archives give a clean error or a correct result ----------

BASE = simple_archive(n_layers=2)


def _convert_with_timeout(path: Path, dest: Path, seconds: float = 20) -> BaseException | None:
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            convert(str(path), str(dest))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the property inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "convert hung"
    return outcome[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=len(BASE)),
    flips=st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(1, 255)), max_size=4),
)
def test_mutations_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(BASE)
    for position, xor in flips:
        data[position] ^= xor
    data = data[:cut] if cut < len(BASE) else data
    work = tmp_path_factory.mktemp("m")
    path = work / "in.tar"
    path.write_bytes(bytes(data))
    dest = work / "out"
    error = _convert_with_timeout(path, dest)
    if error is None:
        from pyoci import verify

        assert verify(dest).ok
    else:
        assert isinstance(error, PyociError), repr(error)
        assert "\n" not in str(error)
        assert not dest.exists()


def test_digest_of_base_is_stable() -> None:
    assert hashlib.sha256(BASE).hexdigest() == hashlib.sha256(simple_archive(n_layers=2)).hexdigest()
    assert issubclass(ArchiveError, PyociError)


@pytest.mark.parametrize("tag", ["", "../../x", "a//b", "-x", "a b", "x" * 256])
def test_invalid_tags_are_refused(tmp_path: Path, tag: str) -> None:
    with pytest.raises(FormatError, match="invalid tag"):
        convert(str(FIXTURES / "hello-amd64.tar"), str(tmp_path / "o"), tag=tag)
    assert not (tmp_path / "o").exists()


def test_layout_tag_that_is_no_registry_tag_is_not_pushed_as_a_path(tmp_path: Path) -> None:
    from pyoci import push

    layout = tmp_path / "l"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{layout}:team/app:1.0")
    with pytest.raises(FormatError, match="not a valid registry tag"):
        push(f"oci:{layout}:team/app:1.0", f"static:{tmp_path / 'site'}:repo")
    assert not list((tmp_path).glob("**/manifests/team*"))


def test_oci_archive_never_replaces_a_special_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    for target in (fifo, tmp_path / "dir"):
        with pytest.raises(LayoutError, match="is not a regular file"):
            convert(str(FIXTURES / "hello-amd64.tar"), f"oci-archive:{target}")
    assert fifo.is_fifo()
    real = tmp_path / "real.tar"
    (tmp_path / "link.tar").symlink_to(real)
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci-archive:{tmp_path / 'link.tar'}")
    assert (tmp_path / "link.tar").is_symlink() and real.stat().st_size > 0
    # a dangling link into a directory that does not exist: refused, nothing created along it
    (tmp_path / "astray.tar").symlink_to(tmp_path / "nowhere" / "deep" / "x.tar")
    with pytest.raises(LayoutError, match=r"astray.tar: a symbolic link into .*/nowhere/deep, which is not a dir"):
        convert(str(FIXTURES / "hello-amd64.tar"), f"oci-archive:{tmp_path / 'astray.tar'}")
    (tmp_path / "astray").symlink_to(tmp_path / "nowhere")  # a directory on the way
    with pytest.raises(LayoutError, match=r"astray/x.tar: cannot create its directory: File exists$"):
        convert(str(FIXTURES / "hello-amd64.tar"), f"oci-archive:{tmp_path / 'astray' / 'x.tar'}")
    (tmp_path / "into-file.tar").symlink_to(real / "x.tar")
    with pytest.raises(LayoutError, match=r"into-file.tar: a symbolic link into .*/real.tar, which is not a dir"):
        convert(str(FIXTURES / "hello-amd64.tar"), f"oci-archive:{tmp_path / 'into-file.tar'}")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_layer_leaves_no_temporary_file(tmp_path: Path, signum: int) -> None:
    layer = layer_tar({"big.bin": os.urandom(8 << 20)})
    data = docker_archive([("l.tar", layer, None), ("c.json", config_for([layer]), None)])
    layout = tmp_path / "l"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{layout}:keep")
    before = snapshot(layout)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyoci", "convert", "-", f"oci:{layout}:new"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    deadline = time.monotonic() + 20
    while not list(layout.glob(".pyoci-tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    assert proc.wait(timeout=20) == 128 + signum
    assert "Traceback" not in proc.stderr.read().decode()
    proc.stdin.close()
    assert snapshot(layout) == before


def test_write_failure_is_blamed_on_the_destination(tmp_path: Path) -> None:
    import resource

    layer = layer_tar({"big.bin": os.urandom(3 << 20)})
    path = write(tmp_path, docker_archive([("l.tar", layer, None), ("c.json", config_for([layer]), None)]))

    def small_files() -> None:  # in the child: writes past 1 MiB fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "pyoci", "convert", "--compression", "none", str(path), str(out)],
        capture_output=True,
        preexec_fn=small_files,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert err == f"pyoci: error: {out}: cannot write a blob: File too large\n"
    assert not out.exists()


def test_deeply_nested_json_is_a_clean_error(tmp_path: Path) -> None:
    path = write(tmp_path, docker_archive([("manifest.json", b"[" * 100000 + b"]" * 100000, None)]))
    proc = run_pyoci("convert", str(path), str(tmp_path / "o"), check=False)
    assert proc.returncode == 1 and proc.stderr.decode().endswith("manifest.json: JSON nested too deeply\n")


def test_layer_that_is_not_a_tar(tmp_path: Path) -> None:
    junk = b"junk" * 2000
    path = write(
        tmp_path,
        docker_archive(
            [
                ("l.tar", junk, None),
                ("c.json", config_for([junk]), None),
                (
                    "manifest.json",
                    json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["l.tar"]}]).encode(),
                    None,
                ),
            ]
        ),
    )
    assert_clean_failure(tmp_path, path, "layer 0 (l.tar): not a tar archive")


def test_layer_path_naming_a_directory(tmp_path: Path) -> None:
    import tarfile as _tarfile

    data = bytearray(
        docker_archive(
            [
                (
                    "manifest.json",
                    json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["somedir"]}]).encode(),
                    None,
                ),
                ("c.json", config_for([b""]), None),
            ]
        )
    )
    info = _tarfile.TarInfo("somedir")
    info.type = _tarfile.DIRTYPE
    path = write(tmp_path, info.tobuf() + bytes(data))
    assert_clean_failure(tmp_path, path, "member 'somedir' is a directory, not a file")


def test_negative_threads() -> None:
    from pyoci import LayerOptions

    with pytest.raises(FormatError, match="--threads -3"):
        LayerOptions(threads=-3)


@pytest.mark.parametrize("archive", ["hello-amd64.tar", "hello-amd64.tar.gz", "hello-amd64.tar.zst"])
def test_a_read_error_is_not_called_corrupt_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive: str) -> None:
    import io

    from pyoci.archive import source

    class Failing(io.RawIOBase):
        """The archive file, whose reads fail with EIO (a bad disk) after its first 2,000 bytes."""

        def __init__(self, path: Path) -> None:
            self.data, self.at = path.read_bytes(), 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.at >= 2000:
                raise OSError(5, os.strerror(5))
            n = min(len(buffer), 2000 - self.at)
            buffer[:n] = self.data[self.at : self.at + n]
            self.at += n
            return n

    monkeypatch.setattr(source, "open", lambda path, mode, buffering: Failing(path), raising=False)
    with pytest.raises(ArchiveError, match=rf"^{FIXTURES / archive}: cannot read: Input/output error$"):
        convert(str(FIXTURES / archive), f"oci:{tmp_path / 'out'}")
    assert not (tmp_path / "out").exists()
