"""``pyoci build``: multi-platform images from per-arch files, reproducible, on a base, into every destination."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES, need_tool, run_pyoci, validate_layout
from support.archives import layer_tar
from support.images import multi_layout, single_layout
from support.layouts import blob, entry, read_json, snapshot
from support.registry import Registry

from pyoci import Compression, FormatError, LayerOptions, RegistryOptions, TagError, build, push
from pyoci.commands.build import AddSpec, ConfigChanges, parse_command, parse_port, resolve_epoch
from pyoci.mediatype import IMAGE_INDEX, IMAGE_MANIFEST, LAYER_GZIP, LAYER_ZSTD

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386"]
PLATFORM_JSON = [
    {"architecture": "amd64", "os": "linux"},
    {"architecture": "arm64", "os": "linux"},
    {"architecture": "arm", "os": "linux", "variant": "v7"},
    {"architecture": "386", "os": "linux"},
]
FAST = RegistryOptions(retry_delay=0.01)
FILE_NAMES = ["app-linux-amd64", "app-linux-arm64", "app-linux-armv7", "app-linux-386"]
ADD = "{dist}/app-{{os}}-{{arch}}{{variant}}:/usr/bin/app"


def binaries(directory: Path) -> Path:
    """Four small per-arch "binaries" (executable files of distinct content)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in FILE_NAMES:
        (directory / name).write_bytes(f"#!/bin/sh\necho {name}\n".encode() * 50)
        (directory / name).chmod(0o755)
    return directory


def platform_args() -> list[str]:
    return [arg for platform in PLATFORMS for arg in ("--platform", platform)]


def blob_json(layout: Path, digest: str) -> dict:
    return json.loads(blob(layout, digest))


def layer_members(layout: Path, digest: str) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(blob(layout, digest))) as tar:
        return tar.getmembers()


def layer_file(layout: Path, digest: str, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(blob(layout, digest))) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def test_four_binaries_make_one_four_platform_image(tmp_path: Path) -> None:
    dist = binaries(tmp_path / "dist")
    out = tmp_path / "out"
    proc = run_pyoci(
        "build", *platform_args(), "--add", ADD.format(dist=dist), "--entrypoint", "/usr/bin/app",
        "--annotation", "org.opencontainers.image.description=four binaries", f"oci:{out}:1.0",
    )  # fmt: skip
    top = entry(out, "1.0")
    assert top["mediaType"] == IMAGE_INDEX and "platform" not in top
    assert proc.stdout.decode() == top["digest"] + "\n"
    index = blob_json(out, top["digest"])
    assert index["annotations"] == {"org.opencontainers.image.description": "four binaries"}
    assert [m["platform"] for m in index["manifests"]] == PLATFORM_JSON
    for child, name, platform in zip(index["manifests"], FILE_NAMES, PLATFORM_JSON, strict=True):
        manifest = blob_json(out, child["digest"])
        assert child["mediaType"] == manifest["mediaType"] == IMAGE_MANIFEST
        assert manifest["annotations"] == {"org.opencontainers.image.description": "four binaries"}
        config = blob_json(out, manifest["config"]["digest"])
        assert {k: config[k] for k in platform} == platform and ("variant" in config) == ("variant" in platform)
        assert config["config"] == {"Entrypoint": ["/usr/bin/app"]}
        assert config["created"] == "1970-01-01T00:00:00Z"
        assert config["history"] == [{"created": "1970-01-01T00:00:00Z", "created_by": "pyoci build: add /usr/bin/app"}]
        [layer] = manifest["layers"]
        assert layer["mediaType"] == LAYER_GZIP
        raw = gzip.decompress(blob(out, layer["digest"]))
        assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}
        members = layer_members(out, layer["digest"])
        assert [(m.name, m.mode, m.type) for m in members] == [
            ("usr", 0o755, tarfile.DIRTYPE),
            ("usr/bin", 0o755, tarfile.DIRTYPE),
            ("usr/bin/app", 0o755, tarfile.REGTYPE),
        ]
        assert layer_file(out, layer["digest"], "usr/bin/app") == (dist / name).read_bytes()
    validate_layout(out)
    assert run_pyoci("verify", f"oci:{out}:1.0").returncode == 0


def test_skopeo_reads_it_and_umoci_unpacks_each_platform(tmp_path: Path) -> None:
    skopeo, umoci = need_tool("skopeo"), need_tool("umoci")
    dist = binaries(tmp_path / "dist")
    out = tmp_path / "out"
    result = build(f"oci:{out}:1.0", platforms=PLATFORMS, add=[ADD.format(dist=dist)])
    raw = subprocess.run([skopeo, "inspect", "--raw", f"oci:{out}:1.0"], capture_output=True, check=True).stdout
    assert raw == blob(out, str(result.digest))
    copy = tmp_path / "copy"
    subprocess.run([skopeo, "copy", "-q", "--all", f"oci:{out}:1.0", f"oci:{copy}:1.0"], check=True)
    assert entry(copy, "1.0")["digest"] == str(result.digest)
    for image, name in zip(result.images, FILE_NAMES, strict=True):
        arch = ["--override-arch", image.platform.architecture]
        arch += ["--override-variant", image.platform.variant] if image.platform.variant else []
        single = tmp_path / f"single-{name}"
        subprocess.run([skopeo, "copy", "-q", *arch, f"oci:{out}:1.0", f"oci:{single}:one"], check=True)
        assert entry(single, "one")["digest"] == str(image.manifest.digest)
        bundle = tmp_path / f"bundle-{name}"
        subprocess.run(
            [umoci, "unpack", "--rootless", "--image", f"{single}:one", str(bundle)], check=True, capture_output=True
        )
        app = bundle / "rootfs/usr/bin/app"
        assert app.read_bytes() == (dist / name).read_bytes()
        assert os.access(app, os.X_OK)


def test_build_straight_to_a_registry_pulls_back_byte_exact(registry: Registry, tmp_path: Path) -> None:
    skopeo = need_tool("skopeo")
    dist = binaries(tmp_path / "dist")
    local = build(f"oci:{tmp_path / 'local'}:1.0", platforms=PLATFORMS, add=[ADD.format(dist=dist)])
    pushed = build(
        f"docker://{registry.host}/built/app:1.0",
        platforms=PLATFORMS,
        add=[ADD.format(dist=dist)],
        registry=FAST,
    )
    assert pushed.digest == local.digest  # reproducible: the same image whatever the destination
    assert pushed.destination == f"docker://{registry.host}/built/app" and pushed.tag == "1.0"
    pulled = tmp_path / "pulled"
    args = [skopeo, "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{registry.host}/built/app:1.0"]
    subprocess.run([*args, f"oci:{pulled}:p"], check=True)
    assert entry(pulled, "p")["digest"] == str(local.digest)
    assert snapshot(pulled / "blobs") == snapshot(tmp_path / "local" / "blobs")
    # the local build pushed with pyoci push lands under the same digest
    pushed_again = push(f"oci:{tmp_path / 'local'}:1.0", f"{registry.host}/built/pushed:1.0", options=FAST)
    assert pushed_again.digest == local.digest
    # the pushed image as a registry base: its layers are kept, one more goes on top
    extra = tmp_path / "extra"
    extra.write_text("more\n")
    on_top = build(
        f"docker://{registry.host}/built/app:2.0",
        base=f"docker://{registry.host}/built/app:1.0",
        add=[f"{extra}:/etc/extra"],
        registry=FAST,
    )
    assert [str(image.platform) for image in on_top.images] == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "linux/386",
    ]
    for image, base_image in zip(on_top.images, local.images, strict=True):
        assert image.layers[:-1] == base_image.layers and image.added == 1


def make_tree(root: Path, mtime: int, owner: int | None) -> Path:
    """The same files as every other call, with other mtimes and owners (created under the caller's umask)."""
    (root / "bin").mkdir(parents=True)
    (root / "share" / "doc").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    (root / "bin" / "tool").chmod(0o777 & ~current_umask() & 0o755 | 0o100)
    (root / "share" / "doc" / "README").write_text("read me\n")
    (root / "share" / "link").symlink_to("doc/README")
    for path in [root, *root.rglob("*")]:
        if owner is not None:
            os.lchown(path, owner, owner)
        if not path.is_symlink():
            os.utime(path, (mtime, mtime))
    return root


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_same_inputs_same_digests_whatever_mtimes_owners_and_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = binaries(tmp_path / "dist")
    root_user = os.geteuid() == 0
    results = []
    for run, (mask, mtime, owner) in enumerate(
        [(0o022, 1000, None), (0o077, 2_000_000_000, 4321 if root_user else None)]
    ):
        old = os.umask(mask)
        try:
            tree = make_tree(tmp_path / f"tree{run}", mtime, owner)
        finally:
            os.umask(old)
        os.utime(dist / FILE_NAMES[0], (mtime, mtime))
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        results.append(
            build(
                f"oci:{tmp_path / f'out{run}'}:1.0",
                platforms=PLATFORMS,
                add=[ADD.format(dist=dist), f"{tree}:/opt/tool"],
            )
        )
    first, second = results
    assert first.digest == second.digest
    assert [i.manifest.digest for i in first.images] == [i.manifest.digest for i in second.images]
    out = tmp_path / "out1"
    for image in second.images:
        config = blob_json(out, str(image.config.digest))
        assert config["created"] == "2023-11-14T22:13:20Z"
        assert {h["created"] for h in config["history"]} == {"2023-11-14T22:13:20Z"}
        members = layer_members(out, str(image.layers[-1].digest))
        assert {m.mtime for m in members} == {1700000000}
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        modes = {m.name: m.mode for m in members}
        assert modes["opt/tool/bin/tool"] == 0o755 and modes["opt/tool/share/doc/README"] == 0o644
        assert modes["opt/tool/share/doc"] == 0o755
    validate_layout(out)


def test_chown_and_source_date_epoch_option(tmp_path: Path) -> None:
    dist = binaries(tmp_path / "dist")
    out = tmp_path / "out"
    run_pyoci(
        "build", "--platform", "linux/amd64", "--add", f"{dist}:/srv/dist", "--chown", "1000:2000",
        "--source-date-epoch", "86400", f"oci:{out}:c",
    )  # fmt: skip
    manifest = blob_json(out, entry(out, "c")["digest"])
    members = {m.name: m for m in layer_members(out, manifest["layers"][0]["digest"])}
    assert (members["srv"].uid, members["srv"].gid) == (0, 0)  # parents stay root's
    assert {(m.uid, m.gid) for name, m in members.items() if name.startswith("srv/dist")} == {(1000, 2000)}
    assert {m.mtime for m in members.values()} == {86400}
    assert blob_json(out, manifest["config"]["digest"])["created"] == "1970-01-02T00:00:00Z"


def test_one_platform_gives_a_manifest_and_layers_are_shared(tmp_path: Path) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("x=1\n")
    out = tmp_path / "out"
    proc = run_pyoci("build", "--platform", "linux/arm64", "--add", f"{conf}:/etc/app/", f"oci:{out}")
    top = entry(out, "latest")
    assert top["mediaType"] == IMAGE_MANIFEST and top["platform"] == {"architecture": "arm64", "os": "linux"}
    assert proc.stdout.decode().strip() == top["digest"]
    multi = build(f"oci:{out}:multi", platforms=PLATFORMS, add=[f"{conf}:/etc/app/"])
    # no placeholder: every platform gets the same layer bytes, written once
    assert len({image.layers[0].digest for image in multi.images}) == 1
    assert (
        multi.images[1].layers
        == build(f"oci:{out}", platforms=["linux/arm64"], add=[(str(conf), "/etc/app/")]).images[0].layers
    )
    # --from scratch, as in a Dockerfile, is no base; a layout's DIR:TAG is a base
    args = ["--platform", "linux/arm64", "--add", f"{conf}:/etc/app/", str(out)]
    scratch = run_pyoci("build", "--from", "scratch", *args)
    assert scratch.stdout == proc.stdout
    on_top = build(f"oci:{out}:on-top", base=f"{out}:latest", add=[f"{conf}:/etc/more/"])
    assert on_top.images[0].layers[0] == multi.images[1].layers[0] and len(on_top.images[0].layers) == 2
    assert [m.name for m in layer_members(out, str(multi.images[0].layers[0].digest))] == [
        "etc",
        "etc/app",
        "etc/app/app.conf",
    ]
    validate_layout(out)


def test_from_a_layout_keeps_base_layers_and_changes_the_config(tmp_path: Path) -> None:
    base = single_layout(tmp_path / "base")
    base_manifest = blob_json(base, entry(base, "1.0")["digest"])
    base_config = blob_json(base, base_manifest["config"]["digest"])
    extra = tmp_path / "extra.txt"
    extra.write_text("extra\n")
    out = tmp_path / "out"
    result = build(
        f"oci:{out}:2.0",
        base=f"oci:{base}:1.0",
        add=[f"{extra}:/app/"],
        env={"PATH": "/app:/bin", "NEW": "1"},
        labels={"stage": "built"},
        entrypoint=["/app/run"],
        expose=["8080", "53/udp"],
        workdir="/app",
        user="1000",
        source_date_epoch=1700000000,
    )
    [image] = result.images
    assert str(image.platform) == "linux/amd64" and image.added == 1
    manifest = blob_json(out, str(result.digest))
    assert manifest["layers"][:-1] == base_manifest["layers"]  # descriptors and bytes kept
    for layer in base_manifest["layers"]:
        assert blob(out, layer["digest"]) == blob(base, layer["digest"])
    config = blob_json(out, manifest["config"]["digest"])
    assert config["rootfs"]["diff_ids"][:-1] == base_config["rootfs"]["diff_ids"]
    assert len(config["rootfs"]["diff_ids"]) == len(base_config["rootfs"]["diff_ids"]) + 1
    assert config["history"][:-1] == base_config["history"]
    assert config["history"][-1] == {"created": "2023-11-14T22:13:20Z", "created_by": "pyoci build: add /app/"}
    inner, base_inner = config["config"], base_config["config"]
    base_env = dict(item.split("=", 1) for item in base_inner.get("Env", []))
    assert dict(item.split("=", 1) for item in inner["Env"]) == {**base_env, "PATH": "/app:/bin", "NEW": "1"}
    assert inner["Labels"] == {**(base_inner.get("Labels") or {}), "stage": "built"}
    assert inner["Entrypoint"] == ["/app/run"] and "Cmd" not in inner  # a new entrypoint drops the base's cmd
    assert inner["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert (inner["WorkingDir"], inner["User"]) == ("/app", "1000")
    assert {k: v for k, v in config.items() if k not in ("created", "config", "rootfs", "history")} == {
        k: v for k, v in base_config.items() if k not in ("created", "config", "rootfs", "history")
    }
    validate_layout(out)


def test_from_a_multi_platform_layout_picks_each_platforms_base(tmp_path: Path) -> None:
    base = multi_layout(tmp_path / "base")
    base_index = blob_json(base, entry(base, "multi")["digest"])
    dist = binaries(tmp_path / "dist")
    out = tmp_path / "out"
    result = build(f"oci:{out}:x", base=f"oci:{base}:multi", platforms=["linux/arm/v7", "linux/amd64"],
                   add=[ADD.format(dist=dist)], cmd=["--help"])  # fmt: skip
    for image, position in zip(result.images, [2, 0], strict=True):
        base_manifest = blob_json(base, base_index["manifests"][position]["digest"])
        assert [layer.to_json() for layer in image.layers[:-1]] == base_manifest["layers"]
        assert blob_json(out, str(image.config.digest))["config"]["Cmd"] == ["--help"]
    # every platform of the base when none is named
    everything = build(f"oci:{out}:all", base=f"oci:{base}:multi", add=[ADD.format(dist=dist)])
    assert [str(image.platform) for image in everything.images] == [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
        "linux/386",
    ]
    # an attestation manifest (buildx: platform unknown/unknown) is no platform to build
    attested = {**base_index, "manifests": [*base_index["manifests"], {**base_index["manifests"][0], "platform": {
        "architecture": "unknown", "os": "unknown"}}]}  # fmt: skip
    raw = json.dumps(attested).encode()
    new_index = tmp_path / "base" / "blobs" / "sha256" / hashlib.sha256(raw).hexdigest()
    new_index.write_bytes(raw)
    index_json = read_json(tmp_path / "base" / "index.json")
    index_json["manifests"][0] |= {"digest": f"sha256:{new_index.name}", "size": len(raw)}
    (tmp_path / "base" / "index.json").write_text(json.dumps(index_json))
    again = build(f"oci:{out}:all2", base=f"oci:{base}:multi", add=[ADD.format(dist=dist)])
    assert [image.manifest.digest for image in again.images] == [image.manifest.digest for image in everything.images]
    with pytest.raises(FormatError, match="no image for platform linux/s390x"):
        build(f"oci:{out}:y", base=f"oci:{base}:multi", platforms=["linux/s390x"])
    validate_layout(out)


def test_from_a_docker_archive_with_a_variant_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = build(f"oci:{out}:x", base=str(FIXTURES / "hello-arm64.tar"), platforms=["linux/arm64/v8"], user="nobody")
    [image] = result.images
    assert image.added == 0 and len(image.layers) == 2
    config = blob_json(out, str(image.config.digest))
    assert (config["architecture"], config["variant"], config["config"]["User"]) == ("arm64", "v8", "nobody")
    assert config["history"][-1] == {
        "created": "1970-01-01T00:00:00Z",
        "created_by": "pyoci build: config",
        "empty_layer": True,
    }
    with pytest.raises(FormatError, match="contradicts the image config's linux/arm64"):
        build(f"oci:{out}:y", base=str(FIXTURES / "hello-arm64.tar"), platforms=["linux/amd64"])
    validate_layout(out)


def test_layer_files_per_platform(tmp_path: Path) -> None:
    for arch in ("amd64", "arm64"):
        (tmp_path / f"rootfs-{arch}.tar.gz").write_bytes(gzip.compress(layer_tar({"etc/arch": arch.encode()}), mtime=0))
    (tmp_path / "plain.tar").write_bytes(layer_tar({"etc/plain": b"p"}))
    out = tmp_path / "out"
    result = build(
        f"oci:{out}:l",
        platforms=["linux/amd64", "linux/arm64"],
        layers=[str(tmp_path / "rootfs-{arch}.tar.gz"), tmp_path / "plain.tar"],
    )
    for image, arch in zip(result.images, ("amd64", "arm64"), strict=True):
        gz, plain = image.layers
        assert gz.digest.encoded == hashlib.sha256((tmp_path / f"rootfs-{arch}.tar.gz").read_bytes()).hexdigest()
        assert plain.media_type == LAYER_GZIP
        history = blob_json(out, str(image.config.digest))["history"]
        assert [h["created_by"] for h in history] == [
            f"pyoci build: layer rootfs-{arch}.tar.gz",
            "pyoci build: layer plain.tar",
        ]
    validate_layout(out)


def test_other_destinations(tmp_path: Path) -> None:
    dist = binaries(tmp_path / "dist")
    args = {"platforms": PLATFORMS[:2], "add": [ADD.format(dist=dist)]}
    layout = build(f"oci:{tmp_path / 'layout'}:t", **args)
    archive = build(f"oci-archive:{tmp_path / 'image.tar'}:t", **args)
    assert archive.digest == layout.digest
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with tarfile.open(tmp_path / "image.tar") as tar:
        tar.extractall(unpacked, filter="data")
    assert snapshot(unpacked) == snapshot(tmp_path / "layout")
    static = build(f"static:{tmp_path / 'site'}:me/app:t", **args)
    assert static.digest == layout.digest
    served = tmp_path / "site" / "v2" / "me" / "app" / "manifests"
    assert (served / "t.oci-index").read_bytes() == blob(tmp_path / "layout", str(layout.digest))
    zstd = build(f"oci:{tmp_path / 'z'}:t", options=LayerOptions(Compression.ZSTD), **args)
    assert {image.layers[0].media_type for image in zstd.images} == {LAYER_ZSTD}
    validate_layout(tmp_path / "z")


def test_docker_archive_for_docker_load(tmp_path: Path) -> None:
    skopeo = need_tool("skopeo")
    dist = binaries(tmp_path / "dist")
    archive = tmp_path / "app.tar"
    result = build(
        f"docker-archive:{archive}:example.com/app:1", platforms=["linux/arm/v7"], add=[ADD.format(dist=dist)]
    )
    assert (result.destination, result.tag) == (f"docker-archive:{archive}", "1")
    with tarfile.open(archive) as tar:
        [item] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        ours = json.load(tar.extractfile(item["Config"]))  # type: ignore[arg-type]
    assert item["RepoTags"] == ["example.com/app:1"]
    assert item["Config"] == f"{result.images[0].config.digest.encoded}.json"  # the image ID docker load reports
    info = json.loads(
        subprocess.run([skopeo, "inspect", f"docker-archive:{archive}"], capture_output=True, check=True).stdout
    )
    assert (info["Os"], info["Architecture"]) == ("linux", "arm")
    back = tmp_path / "back"
    subprocess.run([skopeo, "copy", "-q", f"docker-archive:{archive}", f"oci:{back}:b"], check=True)
    raw = subprocess.run([skopeo, "inspect", "--config", "--raw", f"oci:{back}:b"], capture_output=True, check=True)
    config = json.loads(raw.stdout)
    assert config["variant"] == "v7" and config["rootfs"] == ours["rootfs"]


def test_json_output(tmp_path: Path) -> None:
    dist = binaries(tmp_path / "dist")
    proc = run_pyoci("build", "--json", *platform_args(), "--add", ADD.format(dist=dist), f"oci:{tmp_path / 'o'}:j")
    result = json.loads(proc.stdout)
    assert result["tag"] == "j" and result["mediaType"] == IMAGE_INDEX
    assert [image["platform"] for image in result["images"]] == PLATFORM_JSON
    assert result["digest"] == entry(tmp_path / "o", "j")["digest"]


def test_links_stay_links_and_top_level_links_are_followed(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("secret\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "escape").symlink_to("../outside")
    (tree / "absolute").symlink_to(tmp_path / "outside")
    (tmp_path / "named").symlink_to(tmp_path / "outside")
    out = tmp_path / "out"
    result = build(f"oci:{out}", platforms=["linux/amd64"], add=[f"{tree}:/t", f"{tmp_path / 'named'}:/named"])
    members = {m.name: m for m in layer_members(out, str(result.images[0].layers[0].digest))}
    assert members["t/escape"].issym() and members["t/escape"].linkname == "../outside"
    assert members["t/absolute"].issym() and members["t/absolute"].linkname == str(tmp_path / "outside")
    assert members["named"].isfile() and members["named"].size == 7
    assert sorted(members) == ["named", "t", "t/absolute", "t/escape"]


def test_value_parsing() -> None:
    assert parse_command('["/bin/app", "--flag"]', "--cmd") == ("/bin/app", "--flag")
    assert parse_command("/bin/app --flag", "--cmd") == ("/bin/app --flag",)
    assert parse_command("[]", "--cmd") == ()
    with pytest.raises(FormatError, match="JSON array of strings"):
        parse_command("[1]", "--cmd")
    assert [parse_port(p) for p in ("80", "53/UDP", "0443/sctp")] == ["80/tcp", "53/udp", "443/sctp"]
    for bad in ("0", "65536", "80/icmp", "http"):
        with pytest.raises(FormatError, match="--expose"):
            parse_port(bad)
    assert (
        AddSpec.parse("a:b:/usr/bin/x:y").source == "a:b" and AddSpec.parse("a:b:/usr/bin/x:y").dest == "/usr/bin/x:y"
    )
    assert AddSpec.parse("d:/opt//x/./").dest == "/opt/x/" and AddSpec.parse("d:/").dest == "/"
    with pytest.raises(FormatError, match="--workdir"):
        ConfigChanges(workdir="relative")
    assert resolve_epoch(5) == 5


def test_config_changes_merge_key_by_key() -> None:
    inner = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Labels": {"a": "1"}, "ExposedPorts": {"80/tcp": {}}}
    ConfigChanges(env={"A": "2", "B": "3"}, labels={"b": "2"}, expose=("81/tcp",), cmd=("run",)).apply(inner)
    assert inner == {
        "Env": ["PATH=/bin", "A=2", "B=3"], "Cmd": ["run"], "Labels": {"a": "1", "b": "2"},
        "ExposedPorts": {"80/tcp": {}, "81/tcp": {}},
    }  # fmt: skip
    ConfigChanges(entrypoint=(), cmd=()).apply(inner)
    assert "Entrypoint" not in inner and "Cmd" not in inner


BAD = [
    (["--add", "{tmp}/absent:/x"], "absent: no such file or directory"),
    (["--add", "{tmp}/dist/app-linux-amd64:usr/bin/app"], "DEST must be an absolute path"),
    (["--add", "{tmp}/dist/app-linux-amd64:/usr/../etc/x"], "DEST must not hold '..'"),
    (["--platform", "linux"], "platform 'linux': expected os/architecture"),
    (["--add", "{tmp}/dist/app-linux-amd64:/x", "--add", "{tmp}/dist/app-linux-arm64:/x"], "both write /x"),
    (["--add", "{tmp}/dist/app-linux-amd64:/x", "--add", "{tmp}/dist:/x"], "both write /x"),
    (["--add", "{tmp}/dist/app-linux-amd64:/x", "--add", "{tmp}/dist:/x/sub"], "writes /x/sub below /x, which --add"),
    (["--platform", "linux/s390x", "--add", "{tmp}/dist/app-{{os}}-{{arch}}:/x"],
     "linux/s390x: {tmp}/dist/app-linux-s390x: no such"),
    (["--layer", "{tmp}/dist/app-linux-amd64"], "not a tar archive"),
    (["--layer", "{tmp}/dist/nope-{{arch}}.tar"], "linux/amd64: {tmp}/dist/nope-amd64.tar: no such file"),
    (["--from", "{fixtures}/hello-amd64.tar", "--platform", "linux/arm64"],
     "contradicts the image config's linux/amd64"),
    (["--entrypoint", "[oops"], "--entrypoint '[oops': invalid JSON"),
    (["--env", "NOVALUE"], "--env 'NOVALUE': expected KEY=VALUE"),
    (["--chown", "root"], "--chown 'root': expected UID[:GID]"),
    (["--source-date-epoch", "-1"], "--source-date-epoch -1: expected seconds"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    binaries(tmp_path / "dist")
    existing = tmp_path / "existing"
    build(f"oci:{existing}:keep", platforms=["linux/amd64"], add=[f"{tmp_path}/dist:/d"])
    before = snapshot(existing)
    args = [a.format(tmp=tmp_path, fixtures=FIXTURES) for a in args]
    if "--platform" not in args:
        args += ["--platform", "linux/amd64"]
    for dest in (tmp_path / "new" / "layout", existing):
        proc = run_pyoci("build", *args, f"oci:{dest}:t", check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and "Traceback" not in err, err
        assert err.startswith("pyoci: error: ") and err.count("\n") == 1, err
        assert message.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "new").exists()
    assert snapshot(existing) == before


def test_bad_environment_and_missing_platforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(FormatError, match="SOURCE_DATE_EPOCH 'yesterday'"):
        build(f"oci:{tmp_path / 'o'}", platforms=["linux/amd64"])
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "")
    with pytest.raises(FormatError, match="name the platforms to build"):
        build(f"oci:{tmp_path / 'o'}")
    with pytest.raises(FormatError, match="given twice"):
        build(f"oci:{tmp_path / 'o'}", platforms=["linux/arm64", "linux/arm64/v8"])
    with pytest.raises(FormatError, match="not a digest"):
        build(f"oci:{tmp_path / 'o'}@sha256:{'0' * 64}", platforms=["linux/amd64"])
    with pytest.raises(FormatError, match="a docker-archive holds single-platform images"):
        build(f"docker-archive:{tmp_path / 'o.tar'}", platforms=PLATFORMS)
    empty = tmp_path / "empty"
    build(f"oci:{empty}", platforms=["linux/amd64"])
    with pytest.raises(TagError):
        build(f"oci:{tmp_path / 'o'}", base=f"oci:{empty}:nope")
    assert not (tmp_path / "o").exists()
