#!/usr/bin/env python3
"""Build deterministic reference layers (uncompressed tar streams) for the benchmarks.

No downloads; standard library only.

Kinds:
  usr    a tar of real files: sorted walk of /usr/lib then /usr/share (regular files and
         symlinks only; hard links are stored as regular files), fixed mtime/uid/gid/uname/gname,
         stopping at the target size (the last file is truncated to fit, so the archive is
         within a few KiB of the target). If /usr is too small for the target, the walk is
         repeated under pass1/, pass2/, ... (see --usr-passes). The bytes depend on the
         machine's /usr contents, so record the machine (see README) with the results.
  mixed  synthetic files of mixed compressibility from a seeded PRNG: random bytes
         (incompressible), repeated text (very compressible), zeros. Identical on every machine
         for a given size and seed.

Output: <out>/<kind>-<size>.tar, e.g. /tmp/pyoci-bench/usr-1G.tar. An existing file of a
completed build is reused unless --force is given.

Examples:
  python benchmarks/make_layers.py --kind usr --size 1G
  python benchmarks/make_layers.py --kind usr mixed --size 64M 1G 8G --out /work/bench
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import shutil
import stat
import sys
import tarfile
import time

MTIME = 1_700_000_000  # fixed mtime written in every tar header
UID = GID = 0
CHUNK = 1 << 20
USR_ROOTS = ("/usr/lib", "/usr/share")
DISK_RESERVE = 1 << 30  # keep at least 1 GiB free after writing a layer

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1] if t and t[-1] in _UNITS else ""
    num = t[: len(t) - len(unit)] if unit else t
    return int(float(num) * _UNITS[unit])


def _base_info(name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mtime = MTIME
    ti.uid, ti.gid = UID, GID
    ti.uname = ti.gname = ""
    return ti


def _iter_usr(roots: tuple[str, ...]):
    """Yield (abs_path, st) in a deterministic order: sorted walk, regular files and symlinks."""
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            # os.walk lists symlinks to directories in dirnames: emit them as symlinks, don't descend.
            entries = []
            keep_dirs = []
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if os.path.islink(p):
                    entries.append(d)
                else:
                    keep_dirs.append(d)
            dirnames[:] = sorted(keep_dirs)
            entries.extend(filenames)
            for name in sorted(entries):
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    yield p, st


def _iter_usr_passes(roots: tuple[str, ...], max_passes: int):
    for pass_no in range(max_passes):
        for p, st in _iter_usr(roots):
            yield pass_no, p, st


def build_usr(path: str, target: int, max_passes: int) -> dict:
    passes = 0
    skipped = 0
    files = links = 0
    with open(path, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for pass_no, p, st in _iter_usr_passes(USR_ROOTS, max_passes):
                if tar.offset + 3 * tarfile.BLOCKSIZE >= target:
                    break
                passes = pass_no + 1
                ti = _base_info((f"pass{pass_no}/" if pass_no else "") + p.lstrip("/"))
                ti.mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISLNK(st.st_mode):
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = os.readlink(p)
                    tar.addfile(ti)
                    links += 1
                    continue
                try:
                    f = open(p, "rb")  # noqa: SIM115 (closed by the with below)
                except OSError:
                    skipped += 1
                    continue
                with f:
                    # The last file is cut short so the archive ends at (about) the target size:
                    # room left minus this header (and a PAX header, if any) and the 1 KiB end marker.
                    room = max(0, target - tar.offset - 3 * tarfile.BLOCKSIZE)
                    ti.size = min(os.fstat(f.fileno()).st_size, room)
                    try:
                        tar.addfile(ti, f)
                    except OSError as e:  # file shrank while reading: the archive is now broken
                        raise SystemExit(f"error: {p} changed while reading ({e}); rerun") from e
                files += 1
        exhausted = tar.offset + 3 * tarfile.BLOCKSIZE < target
    return {
        "files": files,
        "symlinks": links,
        "unreadable_skipped": skipped,
        "passes": passes,
        "source_exhausted": exhausted,
    }


# --- mixed ---------------------------------------------------------------------------------------

_WORDS = (  # noqa: SIM905
    "layer manifest digest config blob index image tar gzip zstd oci docker archive "
    "the of and to in is for on with as by at from that this be are or it an not "
    "lib usr share bin etc var opt local include python library package module function "
    "return value error warning info debug version license copyright apache mit gnu"
).split()


def _text_pool(rng: random.Random, size: int = 1 << 20) -> bytes:
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


class _MixedSource(io.RawIOBase):
    """Readable stream of `size` bytes of one content kind, from a seeded PRNG."""

    def __init__(self, rng: random.Random, kind: str, size: int, pool: bytes) -> None:
        self.rng, self.kind, self.left, self.pool = rng, kind, size, pool

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            n = self.left
        if n <= 0:
            return b""
        self.left -= n
        if self.kind == "random":
            return self.rng.randbytes(n)
        if self.kind == "zeros":
            return bytes(n)
        # repeated text: slices of a 1 MiB word pool at PRNG offsets
        parts = []
        need = n
        while need:
            off = self.rng.randrange(len(self.pool) - 4096)
            take = min(need, self.rng.randint(512, 65536), len(self.pool) - off)
            parts.append(self.pool[off : off + take])
            need -= take
        return b"".join(parts)


def build_mixed(path: str, target: int, seed: int) -> dict:
    rng = random.Random(seed)
    pool = _text_pool(random.Random(seed + 1))
    counts = {"random": 0, "text": 0, "zeros": 0}
    files = 0
    with open(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        while tar.offset + 2 * tarfile.BLOCKSIZE < target:
            # weights: ~35% random, ~50% text, ~15% zeros (by file count); sizes log-uniform 1 KiB..16 MiB
            kind = rng.choices(("random", "text", "zeros"), weights=(35, 50, 15))[0]
            size = int(2 ** rng.uniform(10, 24))
            size = min(size, max(0, target - tar.offset - 2 * tarfile.BLOCKSIZE))
            ti = _base_info(f"data/{files // 1000:04d}/{kind}-{files:07d}.bin")
            ti.mode = 0o644
            ti.size = size
            tar.addfile(ti, _MixedSource(rng, kind, size, pool))
            counts[kind] += size
            files += 1
    return {"files": files, "bytes_by_kind": counts, "seed": seed}


def _fmt_size(n: int) -> str:
    for unit, mult in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(CHUNK):
            h.update(b)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", nargs="+", choices=("usr", "mixed"), default=["usr"])
    ap.add_argument("--size", nargs="+", default=["1G"], help="target sizes, e.g. 64M 1G 8G")
    ap.add_argument("--out", default="/tmp/pyoci-bench")
    ap.add_argument("--seed", type=int, default=20240601, help="PRNG seed for --kind mixed")
    ap.add_argument(
        "--usr-passes",
        type=int,
        default=4,
        help="usr: if /usr/lib+/usr/share is smaller than the target, walk it again (entries "
        "prefixed passN/) up to this many times in all (default 4; 1 = never repeat)",
    )
    ap.add_argument("--force", action="store_true", help="rebuild even if the output exists")
    ap.add_argument("--sha256", action="store_true", help="print the sha256 of each layer")
    args = ap.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    rc = 0
    for kind in args.kind:
        for size_text in args.size:
            target = parse_size(size_text)
            path = os.path.join(args.out, f"{kind}-{_fmt_size(target)}.tar")
            if os.path.exists(path) and not args.force:
                print(f"{path}: exists ({os.path.getsize(path)} bytes), reusing (--force to rebuild)")
                if args.sha256:
                    print(f"  sha256 {sha256_file(path)}")
                continue
            free = shutil.disk_usage(args.out).free
            # a tar ends a little past the target (last file, padding); allow for 64 MiB overshoot
            need = target + (64 << 20) + DISK_RESERVE
            if need > free:
                print(
                    f"{path}: SKIPPED, needs ~{need / 2**30:.1f} GiB free (incl. 1 GiB reserve), "
                    f"only {free / 2**30:.1f} GiB free in {args.out}"
                )
                rc = 1
                continue
            tmp = path + ".partial"
            t0 = time.perf_counter()
            try:
                info = build_usr(tmp, target, args.usr_passes) if kind == "usr" else build_mixed(tmp, target, args.seed)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            actual = os.path.getsize(path)
            print(f"{path}: {actual} bytes ({actual / 2**30:.3f} GiB) in {time.perf_counter() - t0:.1f}s {info}")
            if kind == "usr" and info.get("source_exhausted"):
                print(
                    f"  note: {args.usr_passes} pass(es) over /usr/lib + /usr/share hold less than "
                    f"{size_text}; layer is smaller than target"
                )
            elif kind == "usr" and info["passes"] > 1:
                print(
                    f"  note: /usr content repeated ({info['passes']} passes); repeats are far apart, beyond "
                    "deflate's 32 KiB window and zstd's window at levels 1-6, but not long-distance matching"
                )
            if args.sha256:
                print(f"  sha256 {sha256_file(path)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
