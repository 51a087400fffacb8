"""How the gallery scales: make_report's time for N groups and Chromium's time to open a page.

Builds a database of N groups of two files each (paths that do not exist, so no thumbnail
is made and the figures are the gallery's own), writes the gallery, then opens its first,
middle, last and largest page in headless Chromium and prints the wall time of each against the
browser's start on an empty page (medians of --repeat).

    .venv/bin/python bench/gallery_scale.py --groups 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_report import _many_groups_db  # noqa: E402

from fast_diff_py import make_report  # noqa: E402


def browse(url: str) -> float:
    """Seconds from Chromium's start until it has the page's DOM (the page's groups drawn)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    start = time.perf_counter()
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    took = time.perf_counter() - start
    if url != "about:blank" and 'data-rendered="1"' not in out:
        raise SystemExit(f"{url}: the page did not draw its groups")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "x.db"
        _many_groups_db(db, args.groups)
        start = time.perf_counter()
        index = make_report(db, Path(tmp) / "report", 200)
        made = time.perf_counter() - start
        meta = (index.parent / "data" / "meta.js").read_text()
        sizes = [int(n) for n in re.findall(r'"groups": (\d+), "dif_min"', meta)]
        pages = len(sizes)
        largest = sizes.index(max(sizes)) + 1
        files = sqlite3.connect(db).execute("SELECT COUNT(*) FROM directory").fetchone()[0]
        print(f"{args.groups:,} groups ({files:,} files): make_report {made:.2f} s, {pages:,} pages")
        blank = statistics.median(browse("about:blank") for _ in range(args.repeat))
        print(f"chromium on an empty page: {blank:.2f} s (median of {args.repeat})")
        print(f"groups a page: {min(sizes)} to {max(sizes)}, {statistics.mean(sizes):.1f} on average")
        for page in (1, pages // 2, pages, largest):
            url = f"{index.as_uri()}#page={page}"
            t = statistics.median(browse(url) for _ in range(args.repeat))
            print(f"page {page:,} ({sizes[page - 1]} groups): {t:.2f} s, {t - blank:+.2f} s over the empty page")


if __name__ == "__main__":
    main()
