"""Build a benchmark corpus of real photographs with known near-duplicates.

Sources are the wallpapers Debian packages (GNOME, MATE, Plasma, UKUI, Lomiri, sway),
fetched with ``apt-get download`` and unpacked with ``dpkg -x`` (no root needed). Each
wallpaper's largest variant is cut into crops of ``--tile`` pixels; when a corpus needs more
originals than one grid gives, further crops come from the wallpapers scaled to 75 % and
50 %, grids offset by half a tile, and mirror images (a mirror image is not a rotation, so it
is a different picture to every tool here), and for the largest corpora the same crops with
their colour channels swapped. Crops with little detail (flat sky, gradients)
are dropped, and so is every crop whose 32x32 thumbnail lies within ``--min-mse`` of an
earlier one under any rotation: the originals are distinct beyond doubt.

A fraction ``--dup-fraction`` of the originals gets one near-duplicate each, the transforms
taken in turn: exact copy, JPEG quality 70, 50 % resize, rotations by 90, 180 and 270
degrees, PNG re-save, 4 % brighter, 2 % crop (``--transforms`` picks others: HEIC, AVIF
and BMP copies, mirror images, 1 and 3 % crops, crops off one side or a corner, and distinct
look-alike framings of the same scene). A few broken files are added (zero bytes,
truncated JPEG, text named .jpg). ``--partitions 2`` splits the originals between folders
``a`` and ``b`` and puts each duplicate in the other folder, as fast-diff-py's two-partition
mode expects.

    python bench/make_wallpaper_corpus.py /tmp/wall-500 --originals 500 --dup-fraction 1
    python bench/make_wallpaper_corpus.py /tmp/wall-4000 --originals 4000 --dup-fraction 0.3

Writes OUT/photos/... and OUT/truth.json: the (original, duplicate, transform) triples and
the broken files. Needs numpy and opencv (the project's venv has both).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

PACKAGES = [
    "gnome-backgrounds",
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "ukui-wallpapers",
    "lomiri-wallpapers",
    "lomiri-wallpapers-20.04",
    "sway-backgrounds",
]
TRANSFORMS = ["copy", "jpeg70", "resize50", "rot90", "rot180", "rot270", "png", "bright4", "crop2"]
# copies as phones and editors write them (--transforms): HEIC (pillow-heif) and AVIF at
# quality 90, a BMP; mirror images (left-right, as a front camera; upside-down flip)
PHONE_TRANSFORMS = ["heic", "avif", "bmp", "mirror", "flip"]
# trimmed copies (crop_tolerance): 1 and 3 % of each side (half at each end), 2 % off one
# side, 2 % off two adjacent sides; "lookalike" is no copy: the original and two further
# *distinct* photos are three framings of one scene (92 % crops, shifted by 8 % from one
# another, none inside another), the near neighbours precision is measured against
CROP_TRANSFORMS = ["crop1", "crop3", "crop2side", "crop2corner", "lookalike"]
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}
PERMUTATIONS = [(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1), (1, 2, 0), (2, 0, 1)]
VARIANTS = 3 * 2 * 2 * len(PERMUTATIONS)  # scale x grid offset x mirror x channel order


def fetch(cache: Path) -> Path:
    """Download and unpack the wallpaper packages into ``cache`` (once); return the root."""
    root = cache / "root"
    if (cache / "done").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        if not list(cache.glob(f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=cache, check=True, stdout=subprocess.DEVNULL)
    for deb in sorted(cache.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    (cache / "done").touch()
    return root


def wallpapers(root: Path) -> list[Path]:
    """One file per wallpaper: the largest variant (Plasma ships each in many sizes)."""
    groups: dict[str, tuple[int, Path]] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in EXTENSIONS:
            continue
        s = str(p)
        key = s.split("/contents/")[0] if "/contents/" in s else ("sway" if "/sway/" in s else s)
        size = p.stat().st_size
        if key not in groups or size > groups[key][0]:
            groups[key] = (size, p)
    return [p for _, p in sorted(groups.values(), key=lambda t: str(t[1]))]


def crops(img: np.ndarray, tw: int, th: int, variant: int):
    """The crops of one wallpaper for one variant (scale, grid offset, mirror)."""
    scale = (1.0, 0.75, 0.5)[variant % 3]
    offset = (variant // 3) % 2
    mirror = (variant // 6) % 2
    channels = PERMUTATIONS[(variant // 12) % len(PERMUTATIONS)]
    if scale != 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if mirror:
        img = img[:, ::-1]
    if channels != (0, 1, 2):
        img = img[:, :, list(channels)]
    h, w = img.shape[:2]
    for y in range(offset * th // 2, h - th + 1, th):
        for x in range(offset * tw // 2, w - tw + 1, tw):
            yield np.ascontiguousarray(img[y : y + th, x : x + tw])


def detailed(tile: np.ndarray) -> bool:
    grey = cv2.cvtColor(tile, cv2.COLOR_BGR2GRAY)
    return float(grey.std()) >= 20 and float(cv2.Laplacian(grey, cv2.CV_64F).var()) >= 30


class Distinct:
    """Accepts a crop only if no accepted one lies within ``min_mse`` (mean squared
    difference of the 8x8 area thumbnails, any rotation; averaging only shrinks differences,
    so full-size thumbnails of accepted crops are at least as far apart). Candidates come from
    neighbouring buckets of grey mean (``|grey_a - grey_b|^2`` bounds the mean squared
    difference from below) and pass a 4x4 cell bound before the 8x8 check."""

    def __init__(self, min_mse: float):
        self.min_mse = min_mse
        self.width = float(np.sqrt(min_mse))
        self.buckets: dict[int, list] = {}  # bucket -> [sigs (n x 192), cells (n x 48), n]

    def add(self, tile: np.ndarray) -> bool:
        sig = cv2.resize(tile, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
        cells = sig.reshape(4, 2, 4, 2, 3).mean((1, 3))
        bucket = int(sig.mean() // self.width)
        for b in (bucket - 1, bucket, bucket + 1):
            if b not in self.buckets:
                continue
            s_arr, c_arr, n = self.buckets[b]
            s_arr, c_arr = s_arr[:n], c_arr[:n]
            for k in range(4):
                near = ((c_arr - np.rot90(cells, k).ravel()) ** 2).mean(1) < self.min_mse
                if near.any() and (((s_arr[near] - np.rot90(sig, k).ravel()) ** 2).mean(1) < self.min_mse).any():
                    return False
        entry = self.buckets.setdefault(bucket, [np.empty((64, 192), np.float32), np.empty((64, 48), np.float32), 0])
        if entry[2] == len(entry[0]):  # grow by doubling
            entry[0] = np.concatenate([entry[0], np.empty_like(entry[0])])
            entry[1] = np.concatenate([entry[1], np.empty_like(entry[1])])
        entry[0][entry[2]] = sig.ravel()
        entry[1][entry[2]] = cells.ravel()
        entry[2] += 1
        return True


def derive(img: np.ndarray, transform: str, path: Path) -> Path:
    """Write the near-duplicate of ``img`` made by ``transform`` next to ``path``'s name."""
    q90 = [cv2.IMWRITE_JPEG_QUALITY, 90]
    h, w = img.shape[:2]
    if transform == "png":
        out = path.with_suffix(".png")
        cv2.imwrite(str(out), img)
        return out
    if transform == "jpeg70":
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 70])
        return path
    if transform == "heic":
        import pillow_heif

        out = path.with_suffix(".heic")
        pillow_heif.from_bytes("RGB", (w, h), np.ascontiguousarray(img[:, :, ::-1]).tobytes()).save(out, quality=90)
        return out
    if transform == "avif":
        out = path.with_suffix(".avif")
        cv2.imwrite(str(out), img, [cv2.IMWRITE_AVIF_QUALITY, 90])
        return out
    if transform == "bmp":
        out = path.with_suffix(".bmp")
        cv2.imwrite(str(out), img)
        return out
    if transform == "resize50":
        img = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    elif transform.startswith("rot"):
        img = np.rot90(img, {"rot90": 1, "rot180": 2, "rot270": 3}[transform])
    elif transform == "mirror":
        img = img[:, ::-1]
    elif transform == "flip":
        img = img[::-1]
    elif transform == "bright4":
        img = np.clip(img.astype(np.float32) * 1.04, 0, 255).astype(np.uint8)
    elif transform == "crop2":
        dy, dx = max(1, round(h * 0.01)), max(1, round(w * 0.01))
        img = img[dy : h - dy, dx : w - dx]
    elif transform in ("crop1", "crop3"):
        share = 0.005 if transform == "crop1" else 0.015
        dy, dx = max(1, round(h * share)), max(1, round(w * share))
        img = img[dy : h - dy, dx : w - dx]
    elif transform == "crop2side":
        img = img[:, : w - round(w * 0.02)]
    elif transform == "crop2corner":
        img = img[round(h * 0.02) :, round(w * 0.02) :]
    cv2.imwrite(str(path), np.ascontiguousarray(img), q90)
    return path


def write_one(job: tuple) -> list[dict]:
    tile, folder, dup_folder, name, transform = job
    orig = folder / f"{name}.jpg"
    cv2.imwrite(str(orig), tile, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if transform is None:
        return []
    dup = dup_folder / f"{name}_{transform}.jpg"
    if transform == "lookalike":
        # three distinct framings of one scene, none inside another: 92 % crops of the tile
        # from its top-left (written as the original), top-right and bottom-right corners,
        # each shifted by 8 % of the tile from the next; no copy, so no pair in the truth
        h, w = tile.shape[:2]
        ch, cw = round(h * 0.92), round(w * 0.92)
        for corner, (y, x) in (("", (0, 0)), ("_lookalike_tr", (0, w - cw)), ("_lookalike_br", (h - ch, w - cw))):
            frame = cv2.resize(tile[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)
            target = orig if not corner else dup_folder / f"{name}{corner}.jpg"
            cv2.imwrite(str(target), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return []
    if transform == "copy":
        shutil.copyfile(orig, dup)
    else:
        # derived from the decoded original, as a user's editor would
        dup = derive(cv2.imread(str(orig)), transform, dup)
    return [{"original": str(orig), "duplicate": str(dup), "transform": transform}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--originals", type=int, default=500)
    ap.add_argument("--dup-fraction", type=float, default=1.0)
    ap.add_argument("--tile", default="640x480", help="crop size WxH (default 640x480)")
    ap.add_argument("--partitions", type=int, choices=(1, 2), default=1)
    ap.add_argument(
        "--min-mse",
        type=float,
        default=100.0,
        help="originals closer than this (8x8 thumbnails' mean squared difference, "
        "any rotation) are dropped; 100 is a dif of 300",
    )
    ap.add_argument("--cache", type=Path, default=Path("/tmp/debian-wallpapers"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--transforms",
        default=",".join(TRANSFORMS),
        help="comma list of the near-duplicates made, taken in turn "
        f"(also: {', '.join(PHONE_TRANSFORMS + CROP_TRANSFORMS)})",
    )
    args = ap.parse_args()
    transforms = args.transforms.split(",")
    unknown = set(transforms) - set(TRANSFORMS) - set(PHONE_TRANSFORMS) - set(CROP_TRANSFORMS)
    if unknown:
        raise SystemExit(f"unknown transforms: {', '.join(sorted(unknown))}")
    tw, th = map(int, args.tile.split("x"))
    root = fetch(args.cache)
    sources = wallpapers(root)
    images = [cv2.imread(str(p)) for p in sources]
    images = [im for im in images if im is not None]
    print(f"{len(images)} wallpapers from {len(PACKAGES)} Debian packages", file=sys.stderr)

    distinct = Distinct(args.min_mse)
    tiles: list[np.ndarray] = []
    for variant in range(VARIANTS):
        for img in images:
            for tile in crops(img, tw, th, variant):
                if detailed(tile) and distinct.add(tile):
                    tiles.append(tile)
                    if len(tiles) == args.originals:
                        break
            if len(tiles) == args.originals:
                break
        print(f"variant {variant}: {len(tiles)} distinct crops", file=sys.stderr)
        if len(tiles) == args.originals:
            break
    if len(tiles) < args.originals:
        raise SystemExit(f"only {len(tiles)} distinct crops of {args.tile}; ask for fewer or a smaller --tile")

    photos = args.out / "photos"
    shutil.rmtree(photos, ignore_errors=True)
    folders = [photos / "a", photos / "b"] if args.partitions == 2 else [photos, photos]
    for f in folders:
        f.mkdir(parents=True, exist_ok=True)
    n_dups = round(args.originals * args.dup_fraction)
    rng = np.random.default_rng(0)
    with_dup = set(rng.choice(args.originals, n_dups, replace=False).tolist())
    jobs = []
    t = 0
    for i, tile in enumerate(tiles):
        home = folders[i % 2]
        transform = None
        if i in with_dup:
            transform = transforms[t % len(transforms)]
            t += 1
        jobs.append((tile, home, folders[(i + 1) % 2], f"w{i:05d}", transform))
    with ProcessPoolExecutor(args.jobs) as pool:
        pairs = [p for ps in pool.map(write_one, jobs, chunksize=32) for p in ps]

    broken_dir = folders[0]
    broken = {
        "zero_bytes.jpg": b"",
        "text_as_image.jpg": b"this is not an image\n",
        "truncated.jpg": (Path(pairs[0]["original"]) if pairs else folders[0] / "w00000.jpg").read_bytes()[:5000],
    }
    for name, data in broken.items():
        (broken_dir / name).write_bytes(data)
    truth = {
        "tile": args.tile,
        "originals": args.originals,
        "partitions": args.partitions,
        "pairs": pairs,
        "broken": [str(broken_dir / n) for n in broken],
    }
    (args.out / "truth.json").write_text(json.dumps(truth, indent=1))
    n_files = sum(1 for p in photos.rglob("*") if p.is_file())
    print(
        f"{n_files} files: {args.originals} originals, {len(pairs)} near-duplicates, {len(broken)} broken -> {photos}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
