"""Hostile input: what each entry point does with broken, huge, strange and moving files.

Builds a tree of adversarial cases in a scratch folder (broken and truncated files, zero
bytes, every format OpenCV writes, decompression bombs, a sparse 3 GB ".jpg", hostile and
non-UTF-8 names, symbolic and hard links, a link loop, a link to a device, a FIFO, a
socket, deep nesting), runs the workflow (`snakemake`), `difpy` and `fastdiffpy` over it,
and prints per case the outcome each recorded, with each run's exit code, wall time and
peak memory (the largest process of its tree).

    python bench/adversarial.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def photo(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, width: int, height: int) -> None:
    """A valid PNG of black pixels, written through zlib row by row (never whole in memory)."""
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        body = bytearray()
        for _ in range(height):
            body += comp.compress(row)
        body += comp.flush()
        fh.write(_chunk(b"IDAT", bytes(body)) + _chunk(b"IEND", b""))


def jpeg_claiming(path: Path, width: int, height: int) -> None:
    """A small real JPEG whose frame header claims ``width x height``."""
    data = bytearray(cv2.imencode(".jpg", photo(1, 16, 16))[1].tobytes())
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


def build(root: Path, outside: Path) -> dict[str, str]:
    """Write the cases; returns {relative path: what it is}."""
    cases: dict[str, str] = {}

    def add(rel: str, what: str) -> Path:
        cases[rel] = what
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    good = cv2.imencode(".jpg", photo(1))[1].tobytes()
    add("ok/original.jpg", "a plain JPEG").write_bytes(good)
    add("ok/copy.jpg", "a byte copy of it").write_bytes(good)
    add("broken/truncated.jpg", "JPEG cut in half").write_bytes(good[: len(good) // 2])
    add("broken/headers_only.jpg", "JPEG cut in its headers").write_bytes(good[:60])
    png = cv2.imencode(".png", photo(2))[1].tobytes()
    add("broken/truncated.png", "PNG cut in half").write_bytes(png[: len(png) // 2])
    add("broken/zero.jpg", "0 bytes").write_bytes(b"")
    add("broken/text.jpg", "text named .jpg").write_text("not an image\n")
    add("broken/random.png", "random bytes named .png").write_bytes(np.random.default_rng(0).bytes(5000))
    add("broken/png_sig_only.png", "PNG signature only").write_bytes(png[:8])
    bad_crc = bytearray(png)
    bad_crc[30] ^= 0xFF
    add("broken/bad_crc.png", "PNG with a damaged header CRC").write_bytes(bytes(bad_crc))
    for ext in (
        ".png",
        ".jpg",
        ".jpeg",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".pxm",
        ".sr",
        ".ras",
        ".jp2",
        ".exr",
        ".hdr",
        ".pfm",
        ".gif",
        ".avif",
        ".jxl",
        ".heic",
    ):
        img = photo(3)
        if ext in (".pgm", ".pbm"):
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        if ext in (".exr", ".hdr", ".pfm"):
            img = img.astype(np.float32) / 255
        try:
            ok, buf = cv2.imencode(ext, img)
        except cv2.error:
            ok = False
        if ok:
            add(f"formats/photo{ext}", f"{ext[1:]} written by OpenCV").write_bytes(buf.tobytes())
        else:
            add(f"formats/unwritable{ext}", f"{ext[1:]}: OpenCV cannot write it; 4 bytes of junk").write_bytes(b"junk")
    png_bomb(add("bombs/20000x20000.png", "PNG bomb, 20000 x 20000 (1.2 MB)"), 20_000, 20_000)
    jpeg_claiming(add("bombs/claims_65000x65000.jpg", "JPEG whose header claims 65000 x 65000"), 65_000, 65_000)
    gif = bytearray(b"GIF89a" + struct.pack("<HH", 65_535, 65_535) + b"\x00\x00\x00" + b"\x3b")
    add("bombs/claims_65535.gif", "GIF header claiming 65535 x 65535").write_bytes(bytes(gif))
    with open(add("bombs/sparse_3GB.jpg", "sparse 3 GB file named .jpg"), "wb") as fh:
        fh.truncate(3 << 30)
    names = {
        "names/new\nline.jpg": "newline in the name",
        "names/-rf.jpg": "leading dash",
        "names/ spaces .jpg": "leading and trailing spaces",
        "names/back\\x41slash.jpg": "a literal \\x41 in the name",
        "names/" + "l" * 250 + ".jpg": "255-byte name",
        "names/caf\u00e9_nfc.jpg": "NFC e-acute",
        "names/cafe\u0301_nfd.jpg": "NFD e + combining acute",
        "names/\U0001f4f7.jpg": "emoji",
        "names/UPPER.JPG": "upper-case extension",
    }
    for rel, what in names.items():
        add(rel, what).write_bytes(good)
    raw = os.fsencode(str(root)) + b"/names/latin1_\xe9\xff.jpg"
    Path(os.fsdecode(raw)).write_bytes(good)
    cases[os.fsdecode(b"names/latin1_\xe9\xff.jpg")] = "name not valid UTF-8"
    deep = "deep/" + "/".join(f"d{i}" for i in range(120)) + "/deep.jpg"
    add(deep, "120 folders deep").write_bytes(good)
    add("links/target.jpg", "a file with links to it").write_bytes(cv2.imencode(".jpg", photo(4))[1].tobytes())
    add("links/symlink.jpg", "symbolic link to links/target.jpg").symlink_to("target.jpg")
    os.link(root / "links/target.jpg", add("links/hardlink.jpg", "hard link to links/target.jpg"))
    add("links/dangling.jpg", "dangling symbolic link").symlink_to("nowhere.jpg")
    add("links/self.jpg", "symbolic link to itself").symlink_to("self.jpg")
    add("links/zero_device.jpg", "symbolic link to /dev/zero").symlink_to("/dev/zero")
    (root / "links/loop").mkdir()
    (root / "links/loop/up").symlink_to("..", target_is_directory=True)
    cases["links/loop/up"] = "folder link loop"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "outside.jpg").write_bytes(good)
    (root / "links/outside").symlink_to(outside, target_is_directory=True)
    cases["links/outside/outside.jpg"] = "copy of ok/original.jpg through a folder link leaving the tree"
    os.mkfifo(add("special/fifo.jpg", "FIFO named .jpg"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(add("special/socket.png", "UNIX socket named .png")))
    sock.close()
    locked = add("special/unreadable.jpg", "mode 000 (root reads it anyway)")
    locked.write_bytes(good)
    locked.chmod(0)
    (root / "special/closed").mkdir()
    (root / "special/closed/inside.jpg").write_bytes(good)
    (root / "special/closed").chmod(0)
    cases["special/closed/inside.jpg"] = "in a folder of mode 000"
    return cases


def timed(cmd: list[str], cwd: Path, timeout: int = 900) -> dict:
    """Run ``cmd`` through a helper that reports its children's peak memory."""
    wrapper = (
        "import resource, subprocess, sys, json, time;"
        "t = time.time(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout[-3000:], 'err': p.stderr[-3000:],"
        "'seconds': time.time() - t,"
        "'peak_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", wrapper, *cmd],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return json.loads(proc.stdout)
    except subprocess.TimeoutExpired:
        return {"rc": "timeout", "out": "", "err": "", "seconds": timeout, "peak_mb": float("nan")}


def outcomes(db: Path, root: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    con = sqlite3.connect(db)
    rows = con.execute("SELECT path, success, error, allowed FROM directory").fetchall()
    out = {}
    for path, success, error, allowed in rows:
        rel = os.path.relpath(path, root)
        state = {1: "ok", 0: "error", -1: "skipped" if allowed else "not an image ext"}.get(success, str(success))
        out[rel] = state + (f": {error}" if error else "")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="build the tree here and keep it")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="fd-adversarial-"))
    root, outside = base / "tree", base / "outside"
    cases = build(root, outside)
    before = sorted(p for p in os.listdir(root))
    runs = {}
    work = base / "wf"
    work.mkdir(exist_ok=True)
    (work / "config.yaml").write_text(
        json.dumps(
            {
                "part_a": [str(root)],
                "allowed_file_extensions": ["*"],
                "db_path": str(work / "fd.db"),
                "results_dir": str(work / "work"),
            }
        )
    )
    runs["snakemake"] = timed(
        [
            str(BIN / "snakemake"),
            "--snakefile",
            str(REPO / "workflow/Snakefile"),
            "--configfile",
            str(work / "config.yaml"),
            "--cores",
            "2",
            "--quiet",
            "all",
        ],
        work,
    )
    runs["difpy"] = timed(
        [
            str(BIN / "difpy"),
            "-D",
            str(root),
            "-Z",
            str(base / "difpy"),
            "-le",
            "False",
            "-s",
            "similar",
            "-p",
            "False",
        ],
        base,
    )
    runs["fastdiffpy"] = timed([str(BIN / "fastdiffpy"), "-a", str(root), "-o", str(base / "fdp.db"), "-T", "15"], base)
    wf = outcomes(work / "fd.db", root)
    fdp = outcomes(base / "fdp.db", root)
    stats = next((base / "difpy").glob("difPy_*_stats.json"), None)
    dlogs = json.loads(stats.read_text())["invalid_files"]["logs"] if stats else {}
    dlogs = {os.path.relpath(k, str(root)): v for k, v in dlogs.items()}
    print(f"{'case':<58} {'what':<46} workflow row / difpy invalid_files")
    for rel, what in cases.items():
        shown = rel.replace("\n", "\\n")
        key = (
            rel
            if rel in wf
            else next((k for k in wf if k.replace("\\xe9\\xff", "") == rel.replace("\udce9\udcff", "")), rel)
        )
        row = wf.get(key, "(no row)")
        same = "same" if fdp.get(key) == row else f"fastdiffpy: {fdp.get(key, '(no row)')}"
        print(f"{shown[:58]:<58} {what[:46]:<46} {row[:90]}")
        if key in dlogs:
            print(f"{'':<58} {'':<46} difpy: {dlogs[key][:80]}")
        if same != "same":
            print(f"{'':<58} {'':<46} {same[:90]}")
    print()
    for name, r in runs.items():
        first_err = next((line for line in r["err"].splitlines() if line.strip()), "")
        print(
            f"{name:<10} exit {r['rc']!s:<7} {r['seconds']:7.1f} s  peak {r['peak_mb']:7.0f} MB  "
            f"stderr: {first_err[:100]}"
        )
    print(f"files in the tree before and after: {'unchanged' if before == sorted(os.listdir(root)) else 'CHANGED'}")
    print(f"rows: workflow {len(wf)}, fastdiffpy {len(fdp)}; cases {len(cases)}")
    (root / "special/closed").chmod(0o755)
    return 0


if __name__ == "__main__":
    sys.exit(main())
