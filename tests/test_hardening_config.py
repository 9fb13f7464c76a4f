"""Image configs (issue 12): the bytes are copied verbatim, so a config is refused unless Go tools can read
it and its fields have the OCI schema's types; a null field is kept with a warning. ``verify`` reports
every case as a problem. skopeo (Go) is the oracle: it fails on each refused config and reads each
kept one."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SCHEMAS, need_shared, need_tool, run_pyoci
from support.archives import docker_archive, simple_archive
from support.layouts import snapshot

from pyoci import ArchiveError, Descriptor, FormatError, Platform, convert, mediatype, verify
from pyoci.archive import plan
from pyoci.descriptor import REF_NAME
from pyoci.jsonio import dump_json, load_json
from pyoci.layout.store import ImageLayout
from pyoci.manifest import ImageConfig, Manifest

BASE: dict[str, Any] = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-05-06T07:08:09.123456789Z",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": []},
    "history": [{"created": "2024-05-06T07:08:09Z", "created_by": "x", "empty_layer": True}],
}


def edited(change: Callable[[dict[str, Any]], object]) -> bytes:
    config = json.loads(json.dumps(BASE))
    change(config)
    return json.dumps(config).encode()


def put(config: dict[str, Any], path: str, value: Any) -> None:
    """Set ``config.Cmd`` or ``rootfs.diff_ids`` in their object, ``os.version`` at the top."""
    parent, _, key = path.partition(".")
    if parent in ("config", "rootfs") and key:
        config[parent][key] = value
    else:
        config[path] = value


def field(path: str, value: Any) -> bytes:
    return edited(lambda config: put(config, path, value))


REFUSED = {
    "an array": (json.dumps([BASE]).encode(), "image config is not a JSON object"),
    "utf-16": (json.dumps(BASE).encode("utf-16"), "invalid JSON: not UTF-8 (byte 0)"),
    "bom": (b"\xef\xbb\xbf" + json.dumps(BASE).encode(), "invalid JSON: it starts with a byte order mark"),
    "latin-1": (json.dumps({**BASE, "author": "Jos\xe9"}, ensure_ascii=False).encode("latin-1"), "not UTF-8"),
    "variant surrogate": (field("variant", "\udcff"), "a string holds an unpaired surrogate"),
    "label surrogate": (field("config.Labels", {"\ud800": "x"}), "a string holds an unpaired surrogate"),
    "nan": (field("config.Foo", float("nan")), "invalid JSON: NaN is not a JSON number"),
    "huge number": (field("Size", 0).replace(b'"Size": 0', b'"Size": 1e999'), "number 1e999 is out of range"),
    "cmd float": (field("config.Cmd", 1.5), "'config.Cmd' must be an array of strings, not a number"),
    "cmd string": (field("config.Cmd", "sh"), "'config.Cmd' must be an array of strings, not 'sh'"),
    "entrypoint ints": (field("config.Entrypoint", [1]), "'config.Entrypoint' must be an array of strings"),
    "env string": (field("config.Env", "x"), "'config.Env' must be an array of strings, not 'x'"),
    "env null item": (field("config.Env", [None]), "'config.Env' must be an array of strings, not an array"),
    "labels int": (field("config.Labels", {"a": 1}), "'config.Labels' must be an object of strings"),
    "ports int": (field("config.ExposedPorts", {"80/tcp": 1}), "'config.ExposedPorts' must be an object of objects"),
    "volumes list": (field("config.Volumes", ["/v"]), "'config.Volumes' must be an object of objects, not an array"),
    "user int": (field("config.User", 0), "'config.User' must be a string, not a number"),
    "args escaped": (field("config.ArgsEscaped", "yes"), "'config.ArgsEscaped' must be a boolean, not 'yes'"),
    "config list": (field("config", []), "'config' must be an object, not an array"),
    "author int": (field("author", 5), "'author' must be a string, not a number"),
    "variant int": (field("variant", 7), "'variant' must be a string, not a number"),
    "os.version list": (field("os.version", ["10"]), "'os.version' must be a string, not an array"),
    "os.features string": (field("os.features", "x"), "'os.features' must be an array of strings, not 'x'"),
    "created number": (field("created", 5), "'created' must be an RFC 3339 date-time, not a number"),
    "created empty": (field("created", ""), "'created' must be an RFC 3339 date-time, not ''"),
    "created no zone": (field("created", "2020-01-01T00:00:00"), "not '2020-01-01T00:00:00'"),
    "created no such day": (field("created", "2020-02-30T00:00:00Z"), "not '2020-02-30T00:00:00Z'"),
    "created date only": (field("created", "2020-01-01"), "'created' must be an RFC 3339 date-time, not '2020-01-01'"),
    "history item": (field("history", [1]), "'history[0]' must be an object"),
    "history created": (field("history", [{"created": ""}]), "'history[0].created' must be an RFC 3339 date-time"),
    "history empty_layer": (field("history", [{"empty_layer": "yes"}]), "'history[0].empty_layer' must be a boolean"),
    "diff_ids string": (field("rootfs.diff_ids", "x"), "'rootfs.diff_ids' must be an array of strings, not 'x'"),
}

NULL = "image config '{}' is null, which the OCI schema does not allow"
KEPT = {
    **{
        f"{path} null": (field(path, None), NULL.format(path))
        for path in ("config.Env", "config.User", "config.ExposedPorts", "config", "history", "os.features")
    },
    "no diff_ids": (
        edited(lambda config: config["rootfs"].pop("diff_ids")),
        "image config 'rootfs.diff_ids' is missing, which the OCI schema requires",
    ),
}


def archive_with(config: bytes) -> bytes:
    manifest = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": []}]).encode()
    return docker_archive([("c.json", config, None), ("manifest.json", manifest, None)])


def hand_made_layout(directory: Path, config: bytes) -> Path:
    """A layout holding ``config`` as it is, written without pyoci's checks (for verify and skopeo)."""
    layout = ImageLayout.create(directory)
    descriptor = layout.put_blob(config, mediatype.IMAGE_CONFIG)
    manifest = Manifest.build(descriptor, [])
    layout.put_blob(manifest.raw, manifest.media_type)
    layout.update_index(lambda current: [manifest.descriptor({REF_NAME: "t"})])
    return directory


def skopeo_reads(layout: Path) -> bool:
    proc = subprocess.run(
        [need_tool("skopeo"), "inspect", "--config", f"oci:{layout}:t"], capture_output=True, timeout=60
    )
    return proc.returncode == 0


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_config(tmp_path: Path, case: str) -> None:
    config, message = REFUSED[case]
    source = tmp_path / "a.tar"
    source.write_bytes(archive_with(config))
    layout = tmp_path / "layout"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{layout}:keep")
    before = snapshot(layout)
    with pytest.raises(ArchiveError, match=f"^{source}: c.json: ") as raised:
        convert(str(source), f"oci:{layout}:t")
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert snapshot(layout) == before


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_verify_reports_a_refused_config(tmp_path: Path, case: str) -> None:
    need_shared()
    config, message = REFUSED[case]
    layout = hand_made_layout(tmp_path / "layout", config)
    problems = verify(layout, schemas_dir=SCHEMAS).problems
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize("case", sorted(KEPT))
def test_kept_config_warns(tmp_path: Path, case: str) -> None:
    config, message = KEPT[case]
    source = tmp_path / "a.tar"
    source.write_bytes(archive_with(config))
    result = convert(str(source), f"oci:{tmp_path / 'layout'}:t")
    [image] = result.images
    assert image.warnings == (f"{source}: c.json: {message}",)
    assert (tmp_path / "layout" / "blobs" / "sha256" / image.config.digest.encoded).read_bytes() == config


@pytest.mark.parametrize("case", sorted(KEPT))
def test_verify_reports_a_kept_config(tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    need_shared()
    config, message = KEPT[case]
    layout = hand_made_layout(tmp_path / "layout", config)
    [with_schemas] = verify(layout, schemas_dir=SCHEMAS).problems
    assert "schema config-schema.json" in with_schemas
    monkeypatch.setattr("pyoci.schemas.DEBIAN_SCHEMAS", tmp_path / "none")
    monkeypatch.delenv("PYOCI_OCI_SCHEMAS", raising=False)
    [without] = verify(layout).problems
    assert message in without


@pytest.mark.tools
def test_skopeo_agrees(tmp_path: Path) -> None:
    # skopeo reads every config kept here, and fails on every one refused except these: text that is
    # not Unicode (Go replaces it with U+FFFD, so the image would show other text than its bytes hold;
    # the OCI spec requires UTF-8), a number beyond float64 in a field Go skips, a null inside Env
    # (Go reads it as ""; the schema types each item as a string)
    stricter = ["latin-1", "variant surrogate", "label surrogate", "huge number", "env null item"]
    refused = [case for case, (config, _) in REFUSED.items() if skopeo_reads(hand_made_layout(tmp_path / case, config))]
    kept = [case for case, (config, _) in KEPT.items() if not skopeo_reads(hand_made_layout(tmp_path / case, config))]
    assert (refused, kept) == (stricter, [])


def test_cli_warning_and_json(tmp_path: Path) -> None:
    source = tmp_path / "a.tar"
    source.write_bytes(archive_with(KEPT["config.Env null"][0]))
    proc = run_pyoci("convert", "--json", str(source), str(tmp_path / "layout"))
    message = f"{source}: c.json: image config 'config.Env' is null, which the OCI schema does not allow"
    assert proc.stderr.decode() == f"pyoci: warning: {message}\n"
    assert json.loads(proc.stdout)["images"][0]["warnings"] == [message]


def test_cli_refusal_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "a.tar"
    source.write_bytes(archive_with(REFUSED["cmd float"][0]))
    proc = run_pyoci("convert", str(source), str(tmp_path / "layout"), check=False)
    expected = f"pyoci: error: {source}: c.json: image config 'config.Cmd' must be an array of strings, not a number\n"
    assert (proc.returncode, proc.stderr.decode()) == (1, expected)
    assert not (tmp_path / "layout").exists()


def test_nothing_is_committed_before_every_document_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a value that cannot be written (as a lone surrogate in 'variant' once was) must fail before the
    # first blob is committed: the layout keeps exactly what it held
    parse = ImageConfig.parse

    def unwritable(raw: bytes, where: str) -> ImageConfig:
        config = parse(raw, where)
        return dataclasses.replace(config, platform=dataclasses.replace(config.platform, variant="\udcff"))

    layout = tmp_path / "layout"
    convert(str(FIXTURES / "hello-amd64.tar"), f"oci:{layout}:keep")
    before = snapshot(layout)
    monkeypatch.setattr(plan.ImageConfig, "parse", unwritable)
    source = tmp_path / "a.tar"
    source.write_bytes(simple_archive())
    with pytest.raises(FormatError, match=r'"variant":"\\udcff"\}\}\]\}\': cannot be written as JSON'):
        convert(str(source), f"oci:{layout}:t")
    assert snapshot(layout) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xef\xbb\xbf{}", "w: invalid JSON: it starts with a byte order mark"),
        ('{"a": "b"}'.encode("utf-16-le"), "w: invalid JSON: Expecting property name enclosed in double quotes"),
        ('{"a": "é"}'.encode("utf-16-le"), "w: invalid JSON: not UTF-8 (byte 14)"),
        (b'{"a": "\xff"}', "w: invalid JSON: not UTF-8 (byte 7)"),
        (b'{"a": "\xed\xa0\x80"}', "w: invalid JSON: not UTF-8 (byte 7)"),  # a surrogate, encoded
        (b'{"a": "\\udcff"}', "w: invalid JSON: a string holds an unpaired surrogate, which UTF-8 cannot encode"),
        (b'{"\\uDC00": 1}', "w: invalid JSON: a string holds an unpaired surrogate"),
        (b'[[["\\ud800x"]]]', "w: invalid JSON: a string holds an unpaired surrogate"),
        (b"[NaN]", "w: invalid JSON: NaN is not a JSON number"),
        (b"[-Infinity]", "w: invalid JSON: -Infinity is not a JSON number"),
        (b"[1e999]", "w: invalid JSON: number 1e999 is out of range"),
        (b"1" * 4301, "w: invalid JSON: an integer of 4301 digits is out of range"),
    ],
)
def test_json_that_go_or_utf8_refuses(data: bytes, message: str) -> None:
    with pytest.raises(FormatError) as raised:
        load_json(data, "w")
    assert str(raised.value).startswith(message), str(raised.value)


def test_json_that_is_fine() -> None:
    text = b'{"emoji": "\\ud83d\\ude00", "escaped": "\\\\ud800", "n": [1.5, -0, 1e308, ' + b"9" * 4300 + b"]}"
    value = load_json(text, "w")
    assert (value["emoji"], value["escaped"], value["n"][:3]) == ("\U0001f600", "\\ud800", [1.5, 0, 1e308])


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ({"variant": 7}, "platform: 'variant' and 'os.version' must be strings"),
        ({"os.version": False}, "platform: 'variant' and 'os.version' must be strings"),
        ({"os.features": "sse4"}, "platform: 'os.features' must be an array of strings"),
        ({"os.features": [1]}, "platform: 'os.features' must be an array of strings"),
    ],
)
def test_platform_field_types(platform: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError, match=f"^{message}$"):
        Platform.from_config({"os": "linux", "architecture": "arm", **platform})
    nulls = {key: None for key in platform}
    assert Platform.from_config({"os": "linux", "architecture": "arm", **nulls}) == Platform("linux", "arm")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"urls": 5}, "'urls' must be an array of strings"),
        ({"urls": "http://x"}, "'urls' must be an array of strings"),
        ({"artifactType": 1}, "'artifactType' must be a media type string"),
        ({"artifactType": "text"}, "'artifactType' must be a media type string"),
        ({"mediaType": ""}, "mediaType '' is not of the form type/subtype"),
        ({"mediaType": "a/b\n"}, r"mediaType 'a/b\\n' is not of the form type/subtype"),
        ({"size": 1 << 63}, "'size' must be an integer from 0 to 2\\^63-1"),
        ({"annotations": []}, "'annotations' must map strings to strings"),
        ({"data": 5}, "'data' must be a base64 string"),
        ({"platform": {"os": "linux", "architecture": "amd64", "os.features": 5}}, "'os.features' must be an array"),
    ],
)
def test_descriptor_field_types(extra: dict[str, Any], message: str) -> None:
    entry = {"mediaType": mediatype.IMAGE_MANIFEST, "digest": "sha256:" + "0" * 64, "size": 1, **extra}
    with pytest.raises(FormatError, match=f"^index.json: .*{message}"):
        Descriptor.from_json(entry, "index.json")


def test_text_that_is_not_utf8_is_never_written() -> None:
    with pytest.raises(FormatError, match=r"""^'\{"k":"\\udcff"\}': cannot be written as JSON: it holds bytes that"""):
        dump_json({"k": "\udcff"})
    assert dump_json({"k": "\U0001f600"}) == '{"k":"\U0001f600"}'.encode()


def test_undecodable_annotation_argument(tmp_path: Path) -> None:
    # the command line holds the byte 0xff, which Python decodes to a lone surrogate
    layout = tmp_path / "layout"
    convert(str(FIXTURES / "hello-arm64.tar"), f"oci:{layout}:keep")
    before = snapshot(layout)
    source = str(FIXTURES / "hello-amd64.tar")
    proc = run_pyoci("merge", "--annotation", "k=\udcff", source, f"oci:{layout}:t", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1, err
    assert err.startswith("pyoci: error: --annotation ") and err.endswith(": not valid UTF-8\n"), err
    assert snapshot(layout) == before
