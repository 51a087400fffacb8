"""The gallery: what it shows, that it opens from the file system in a real browser, and
that it pages through many groups."""

from __future__ import annotations

import base64
import json
import re
import shutil
import sqlite3
import subprocess
from datetime import datetime
from html import unescape
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import REPO, run_workflow
from hypothesis import given, settings
from hypothesis import strategies as st

from fast_diff_py import _report, make_report
from fast_diff_py._report import GROUPS_PER_PAGE, PAGE_MAX_GROUPS, PAGE_MIN_GROUPS, keep_rank

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium here (Debian package chromium; .ci/run installs it)"
)


def browse(url: str, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on a file: URL, after its scripts have run."""
    return subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The workflow's run on a copy of the example images: its database and gallery."""
    tmp = tmp_path_factory.mktemp("gallery")
    images = tmp / "images"
    shutil.copytree(REPO / "examples" / "images", images)
    run_workflow(tmp / "w", {"part_a": [str(images)]})
    return tmp / "w" / "results"


def stored_pairs(db: Path) -> dict[frozenset, float]:
    con = sqlite3.connect(db)
    return {
        frozenset((a, b)): d
        for a, b, d in con.execute(
            "SELECT a.path, b.path, d.dif FROM dif_table d JOIN directory a ON a.key = d.key_a "
            "JOIN directory b ON b.key = d.key_b WHERE d.dif <= 200"
        )
    }


def loaded(path: Path, call: str) -> object:
    """The data a gallery script hands to ``FD.<call>``; a page's groups with each file's
    ``thumb`` as the page script hands it over (its data URI, or None)."""
    args = json.loads("[" + re.fullmatch(rf"FD\.{call}\((.*)\);\n", path.read_text(), re.S).group(1) + "]")
    if call == "page":
        name, groups, thumbs = args
        assert name == path.name  # the page says which it is: a late page of another is not drawn
        files = [f for g in groups for f in g["files"]]
        assert len(thumbs) == len(files)
        for f, thumb in zip(files, thumbs):
            assert "thumb" not in f and "key" not in f  # keys follow walk order: not on a page
            f["thumb"] = thumb
        return groups
    return args[-1]


def pages_of(report: Path) -> list[Path]:
    """A gallery's pages of groups, in order (as ``meta.js`` lists them)."""
    return [report / "data" / p["file"] for p in loaded(report / "data/meta.js", "meta")["pages"]]


def test_the_gallery_holds_every_group_with_its_files(example):
    meta = loaded(example / "report/data/meta.js", "meta")
    page = loaded(pages_of(example / "report")[0], "page")
    assert meta["groups"] == len(page) == 3 and meta["broken"] == 1 and meta["files"] == 15
    pairs = stored_pairs(example / "fast_diff.db")
    con = sqlite3.connect(example / "fast_diff.db")
    info = {p: (px, py, size) for p, px, py, size in con.execute("SELECT path, px, py, file_size FROM directory")}
    for group in page:
        best = [f for f in group["files"] if f["best"]]
        assert len(best) == 1
        assert best[0]["path"] == max(
            info.keys() & {f["path"] for f in group["files"]}, key=lambda p: keep_rank(*info[p], p)
        )
        for f in group["files"]:
            if not f["best"]:
                assert f["dif"] == pairs[frozenset((f["path"], best[0]["path"]))]
            assert jpeg_of(f["thumb"]) is not None
    assert [g["dif"] for g in page] == sorted(g["dif"] for g in page)
    # why each is kept: a rotation has the same resolution (214 x 320 against 320 x 214), and
    # a re-encode too: there the larger file is kept
    why = {Path(f["path"]).name: f["why"] for g in page for f in g["files"] if f["best"]}
    assert why == {
        "chelsea.jpg": "highest resolution",
        "coffee.jpg": "largest file of the highest resolution",
        "rocket_rotated.png": "largest file of the highest resolution",
    }
    assert all("why" not in f for g in page for f in g["files"] if not f["best"])


def test_a_tie_is_kept_by_its_path():
    from fast_diff_py._report import kept_because

    best, twin = (1, "b.jpg", 10, 10, 500), (2, "a.jpg", 10, 10, 500)
    assert max([twin, best], key=lambda r: keep_rank(*r[2:5], r[1])) == best
    assert kept_because(best, [twin]) == "as large as another in resolution and bytes; chosen by its path"
    assert kept_because(best, [(3, "c.jpg", 10, 9, 900)]) == "highest resolution"


def jpeg_of(thumb: str | None) -> np.ndarray | None:
    """The image of a gallery thumbnail: a JPEG inside its page (a data URI)."""
    prefix = "data:image/jpeg;base64,"
    if not thumb or not thumb.startswith(prefix):
        return None
    return cv2.imdecode(np.frombuffer(base64.b64decode(thumb[len(prefix) :]), np.uint8), cv2.IMREAD_COLOR)


def test_the_gallery_takes_its_thumbnails_from_the_thumbnail_jobs(example, tmp_path, caplog, monkeypatch):
    """The thumbnail jobs make each decoded file's gallery thumbnail from their own decoding;
    the gallery uses them and reads no photo again (here the photos are gone), and decodes a
    file again only where no preview is given."""
    previews = sorted((example / "work" / "thumbnails").glob("*.previews.parquet"))
    assert previews
    import pyarrow.parquet as pq

    table = pq.read_table(previews[0]).to_pylist()
    assert len(table) == 13  # the decoded files of the example images
    for row in table:
        img = cv2.imdecode(np.frombuffer(row["jpeg"], np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and max(img.shape[:2]) <= 160 and min(img.shape[:2]) >= 32
    # a photo read again is recorded, and gives nothing (as if it were gone)
    read_again = []
    monkeypatch.setattr(_report, "_thumbnail", lambda path: read_again.append(path))
    db = example / "fast_diff.db"
    with_previews = make_report(db, tmp_path / "with", 200.0, previews=previews).parent
    page = loaded(pages_of(with_previews)[0], "page")
    assert all(jpeg_of(f["thumb"]) is not None for g in page for f in g["files"])
    assert read_again == []
    without = make_report(db, tmp_path / "without", 200.0).parent
    assert all(f["thumb"] is None for g in loaded(pages_of(without)[0], "page") for f in g["files"])
    assert sorted(read_again) == sorted(f["path"] for g in page for f in g["files"])
    # damaged previews: named in the log, and the files decoded again
    bad = tmp_path / "bad.previews.parquet"
    bad.write_bytes(b"PAR1 garbage PAR1")
    with caplog.at_level("WARNING"):
        damaged = make_report(db, tmp_path / "damaged", 200.0, previews=[bad]).parent
    assert "bad.previews.parquet" in caplog.text
    assert all(f["thumb"] is None for g in loaded(pages_of(damaged)[0], "page") for f in g["files"])


def test_snakemakes_report_holds_the_gallery(example, tmp_path):
    """``snakemake --report`` shows the gallery (registered with report(), with its caption
    and the workflow's description): the whole folder, every thumbnail included."""
    import zipfile

    work = example.parent
    config = yaml.safe_load((work / "config.yaml").read_text())
    zipped = tmp_path / "report.zip"
    run_workflow(work, config, "--report", str(zipped))
    names = zipfile.ZipFile(zipped).namelist()
    gallery = [n for n in names if n.endswith("/index.html") and "/data/raw/" in n]
    assert len(gallery) == 1
    folder = gallery[0].rsplit("/", 1)[0]
    pages = sorted(p.name for p in (example / "report" / "data").iterdir())
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith(folder + "/data/")) == pages
    assert f"{folder}/data/{pages_of(example / 'report')[0].name}" in names
    page = zipfile.ZipFile(zipped).read("report/report.html").decode()
    assert "Gallery" in page and "difPy" in page and "fast-diff found duplicate" in page


@needs_browser
def test_the_gallery_opens_in_a_browser_with_every_pair_and_image(example, tmp_path):
    index = example / "report" / "index.html"
    dom = browse(index.as_uri(), "--dump-dom").stdout
    assert 'data-rendered="1"' in dom
    pairs = stored_pairs(example / "fast_diff.db")
    shown = re.findall(r'<div class="file[^"]*" data-path="([^"]*)" data-dif="([^"]*)">', dom)
    assert len(shown) == 6
    for (a, b), dif in ((tuple(p), d) for p, d in pairs.items()):
        assert any(unescape(path).endswith(Path(a).name) for path, _ in shown)
        assert any(unescape(path).endswith(Path(b).name) for path, _ in shown)
        assert f"dif {round(dif, 3):g}" in dom or dif == 0
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == 6 and all('data-ok="1"' in i for i in images), images
    broken = browse(f"{index.as_uri()}#broken=1", "--dump-dom").stdout
    assert "broken.jpg" in broken and "truncated JPEG" in broken
    shot = tmp_path / "gallery.png"
    browse(index.as_uri(), f"--screenshot={shot}", "--window-size=1200,900")
    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape == (900, 1200, 3)
    assert picture.std() > 20  # thumbnails and text, not a blank page
    assert (picture.reshape(-1, 3) != 255).any(axis=1).mean() > 0.1


def _many_groups_db(path: Path, groups: int) -> None:
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE directory (key INTEGER PRIMARY KEY, path TEXT, px INT, py INT, file_size INT, created REAL, "
        "success INT, allowed INT, error TEXT);"
        "CREATE TABLE dif_table (key_a INT, key_b INT, dif REAL, success INT);"
        "CREATE TABLE dir_index_lookup (dir_index INT, path TEXT, part_b INT);"
    )
    rng = np.random.default_rng(1)
    for g in range(groups):
        k = 2 * g + 1
        con.execute("INSERT INTO directory VALUES (?, ?, 10, 10, 100, 0, 1, 1, NULL)", (k, f"/nowhere/{g}a.jpg"))
        con.execute("INSERT INTO directory VALUES (?, ?, 10, 10, 50, 0, 1, 1, NULL)", (k + 1, f"/nowhere/{g}b.jpg"))
        con.execute("INSERT INTO dif_table VALUES (?, ?, ?, 1)", (k, k + 1, float(rng.integers(0, 200))))
    con.execute("INSERT INTO dir_index_lookup VALUES (0, '/nowhere', 0)")
    con.commit()
    con.close()


def test_many_groups_are_paged_in_order_of_dif(tmp_path):
    _many_groups_db(tmp_path / "x.db", 20 * GROUPS_PER_PAGE + 17)
    index = make_report(tmp_path / "x.db", tmp_path / "report", 200)
    meta = loaded(index.parent / "data/meta.js", "meta")
    sizes = [p["groups"] for p in meta["pages"]]
    assert all(PAGE_MIN_GROUPS <= n <= PAGE_MAX_GROUPS for n in sizes[:-1]) and 0 < sizes[-1] <= PAGE_MAX_GROUPS
    assert 0.7 * GROUPS_PER_PAGE < sum(sizes) / len(sizes) < 1.3 * GROUPS_PER_PAGE
    difs = []
    for page, entry in zip(pages_of(index.parent), meta["pages"], strict=True):
        shown = [g["dif"] for g in loaded(page, "page")]
        assert len(shown) == entry["groups"] and (shown[0], shown[-1]) == (entry["dif_min"], entry["dif_max"])
        difs += shown
    assert difs == sorted(difs) and len(difs) == meta["groups"] == sum(sizes)
    # a lower threshold groups fewer pairs; the folder is replaced whole
    make_report(tmp_path / "x.db", tmp_path / "report", 50)
    meta = loaded(index.parent / "data/meta.js", "meta")
    assert meta["groups"] == sum(d <= 50 for d in difs)
    assert sorted(p.name for p in (index.parent / "data").glob("groups-*")) == sorted(
        p.name for p in pages_of(index.parent)
    )


def test_previews_are_read_by_the_row_groups_of_the_files_shown(tmp_path, monkeypatch):
    """Of a shard's previews the gallery reads every path, then only the row groups that hold
    a file it shows: the same previews as a whole read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fast_diff_py._formats import PREVIEW_SCHEMA

    paths = [f"/photos/{i:04d}.jpg" for i in range(1000)]
    jpegs = [None if i % 7 == 0 else f"jpeg {i}".encode() for i in range(1000)]
    file = tmp_path / "shard.previews.parquet"
    pq.write_table(pa.table({"path": paths, "jpeg": jpegs}, schema=PREVIEW_SCHEMA), file, row_group_size=100)
    shown = {paths[i] for i in (3, 5, 250, 999, 14)} | {"/photos/elsewhere.jpg"}
    read_groups = []
    real = pq.ParquetFile.read_row_group

    def counted(self, group, *args, **kwargs):
        read_groups.append(group)
        return real(self, group, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted)
    found = _report._PreviewIndex([file], shown).read(shown)
    assert found == {p: f"jpeg {int(p[8:12])}".encode() for p in shown if p in paths and int(p[8:12]) % 7}
    assert sorted(read_groups) == [0, 2, 9]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b c", ".", "..", "", ".x", "é", "%", "#?", "x\udcff"]), max_size=5).map(
            "/".join
        ),
        max_size=20,
    ),
    st.booleans(),
)
def test_absolute_paths_and_file_uris_are_the_standard_librarys(paths, rooted):
    """The gallery's absolute paths (made once per folder, or taken as they are where
    already absolute and normal) and file URIs are os.path.abspath's and Path.as_uri's."""
    import os

    absolute = _report._Absolute()
    for path in paths:
        path = ("/" + path) if rooted else path
        assert absolute(path) == os.path.abspath(path), path
        assert _report._file_uri(absolute(path)) == Path(os.path.abspath(path)).as_uri(), path


def test_a_date_the_platform_cannot_show_is_left_blank():
    from fast_diff_py._report import _date

    assert _date(None) == _date(-1.0) == _date(0.0) == ""
    assert _date(1e20) == ""  # beyond any time_t: a file system's garbage, not a failed gallery
    assert len(_date(1e12)) == len("33658-01-01 00:00")  # past year 9999, still shown
    for t in (1.5, 1_700_000_000.25, 4_102_444_799.0):
        assert _date(t) == datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _gallery_input(folder: Path, groups: dict[int, tuple[float, int, int, str]]) -> tuple[Path, Path]:
    """A database of two-file groups (group -> dif, the versions of its two files, the
    settings its previews were made under) with file_state, and the previews of its files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fast_diff_py._formats import PREVIEW_MADE_AS, PREVIEW_SCHEMA

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "x.db"
    db.unlink(missing_ok=True)
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE directory (key INTEGER PRIMARY KEY, path TEXT, px INT, py INT, file_size INT, created REAL, "
        "success INT, allowed INT, error TEXT);"
        "CREATE TABLE dif_table (key_a INT, key_b INT, dif REAL, success INT);"
        "CREATE TABLE dir_index_lookup (dir_index INT, path TEXT, part_b INT);"
        "CREATE TABLE file_state (key INTEGER PRIMARY KEY, path_bytes BLOB, dev INTEGER, inode INTEGER, "
        "file_size INTEGER, mtime_ns INTEGER, same_as INTEGER);"
    )
    previews: dict[str, list] = {}
    # keys in walk order: a group added or removed moves the keys of all after it
    for n, (g, (dif, version_a, version_b, made_as)) in enumerate(sorted(groups.items())):
        k = 2 * n + 1
        for key, side, size, version in ((k, "a", 100, version_a), (k + 1, "b", 50, version_b)):
            path = f"/nowhere/{g}{side}.jpg"
            con.execute("INSERT INTO directory VALUES (?, ?, 10, 10, ?, 0, 1, 1, NULL)", (key, path, size))
            state = (key, path.encode(), g, size, version)
            con.execute("INSERT INTO file_state VALUES (?, ?, 1, ?, ?, ?, NULL)", state)
            previews.setdefault(made_as, []).append((path, f"jpeg of {path} {version} {made_as}".encode()))
        con.execute("INSERT INTO dif_table VALUES (?, ?, ?, 1)", (k, k + 1, dif))
    con.execute("INSERT INTO dir_index_lookup VALUES (0, '/nowhere', 0)")
    con.commit()
    con.close()
    for old in folder.glob("*.previews.parquet"):
        old.unlink()
    for made_as, rows in previews.items():
        schema = PREVIEW_SCHEMA.with_metadata({PREVIEW_MADE_AS: made_as})
        table = pa.table({"path": [p for p, _ in rows], "jpeg": [j for _, j in rows]}, schema=schema)
        pq.write_table(table, folder / f"{made_as}.previews.parquet", row_group_size=64)
    return db, folder


def _gallery_files(report: Path) -> dict[str, bytes]:
    """A gallery's data files by name, ``meta.js`` without the minute it was made."""
    files = {p.name: p.read_bytes() for p in (report / "data").iterdir()}
    files["meta.js"] = re.sub(rb'"made": "[^"]*"', b"", files["meta.js"])
    return files


@settings(max_examples=12, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["add", "remove", "dif", "version", "settings"]),
            st.integers(0, 10**6),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_gallery_made_again_takes_the_pages_that_did_not_change(tmp_path_factory, steps):
    """After any change (groups added or removed with every key moved, a dif, a file's
    version, the settings its preview was made under), the gallery made over the last one
    equals one made from nothing, byte for byte; the pages the change does not touch are the
    last gallery's files (hard links), a page of a changed file is made again."""
    tmp = tmp_path_factory.mktemp("pages")
    rng = np.random.default_rng(7)
    groups = {g: (float(rng.integers(0, 200)), 1, 1, "s1") for g in range(0, 1200, 2)}
    db, folder = _gallery_input(tmp / "in", groups)
    report = tmp / "report"
    make_report(db, report, 200, previews=sorted(folder.glob("*.previews.parquet")))
    for n, (change, seed) in enumerate(steps):
        before = {p.name: p.stat().st_ino for p in (report / "data").glob("groups-*")}
        pick = sorted(groups)[seed % len(groups)]
        if change == "add":
            groups[2 * (seed % 700) + 1] = (float(seed % 200), 1, 1, "s1")
        elif change == "remove" and len(groups) > 1:
            del groups[pick]
        elif change == "dif":
            groups[pick] = ((groups[pick][0] + 1 + seed % 50) % 200,) + groups[pick][1:]
        elif change == "version":
            dif, a, b, made_as = groups[pick]
            groups[pick] = (dif, a, b + 1, made_as)
        else:
            groups[pick] = groups[pick][:3] + (f"s{n + 2}",)
        db, folder = _gallery_input(tmp / "in", groups)
        previews = sorted(folder.glob("*.previews.parquet"))
        index = make_report(db, report, 200, previews=previews)
        fresh = make_report(db, tmp / f"fresh{n}", 200, previews=previews)
        assert _gallery_files(index.parent) == _gallery_files(fresh.parent)
        after = {p.name: p.stat().st_ino for p in (report / "data").glob("groups-*")}
        taken = [name for name, inode in after.items() if before.get(name) == inode]
        assert len(taken) >= len(after) - 3
        changed = {f"/nowhere/{pick}a.jpg", f"/nowhere/{pick}b.jpg"}
        if change in ("version", "settings"):  # the page of the changed file is made again
            shows = {p.name: {f["path"] for g in loaded(p, "page") for f in g["files"]} for p in pages_of(report)}
            assert [name for name, paths in shows.items() if changed & paths and name in taken] == []


def test_a_page_with_a_thumbnail_made_elsewhere_is_made_again(tmp_path):
    """A page whose thumbnails are not all the thumbnail jobs' (a file decoded again, or none
    at all) is never taken by the next gallery: the next may have the jobs' thumbnail."""
    groups = {g: (float(g % 200), 1, 1, "s1") for g in range(400)}
    db, folder = _gallery_input(tmp_path / "in", groups)
    previews = sorted(folder.glob("*.previews.parquet"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(previews[0])
    keep = [p != "/nowhere/7a.jpg" for p in table.column("path").to_pylist()]
    pq.write_table(table.filter(pa.array(keep)), previews[0])
    index = make_report(db, tmp_path / "report", 200, previews=previews)
    unshared = [p for p in pages_of(index.parent) if p.name.endswith(".unshared.js")]
    assert len(unshared) == 1
    assert "/nowhere/7a.jpg" in {f["path"] for g in loaded(unshared[0], "page") for f in g["files"]}
    inode = unshared[0].stat().st_ino
    index = make_report(db, tmp_path / "report", 200, previews=previews)
    assert [p.stat().st_ino for p in pages_of(index.parent) if p.name == unshared[0].name] != [inode]


def test_a_page_changed_since_it_was_written_is_written_again(tmp_path):
    """The last gallery's page is taken only while it is as it was written: one cut short,
    or whose groups were edited, is written anew (and the gallery equals one made from
    nothing)."""
    groups = {g: (float(g % 200), 1, 1, "s1") for g in range(400)}
    db, folder = _gallery_input(tmp_path / "in", groups)
    previews = sorted(folder.glob("*.previews.parquet"))
    index = make_report(db, tmp_path / "report", 200, previews=previews)
    first, second = pages_of(index.parent)[:2]
    first.write_bytes(first.read_bytes()[:-50])  # cut short
    second.write_bytes(second.read_bytes().replace(b'"size": 100', b'"size": 999', 1))
    inodes = {p.name: p.stat().st_ino for p in pages_of(index.parent)}
    index = make_report(db, tmp_path / "report", 200, previews=previews)
    fresh = make_report(db, tmp_path / "fresh", 200, previews=previews)
    assert _gallery_files(index.parent) == _gallery_files(fresh.parent)
    again = {p.name: p.stat().st_ino for p in pages_of(index.parent)}
    assert again[first.name] != inodes[first.name] and again[second.name] != inodes[second.name]
    assert sum(again[n] == inodes[n] for n in again) == len(again) - 2


def _without_jpegs(previews: list[Path]) -> None:
    """The previews files with every thumbnail taken out (their rows and settings kept)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in previews:
        table = pq.read_table(path)
        jpegs = pa.nulls(len(table), pa.binary())
        pq.write_table(table.set_column(table.schema.get_field_index("jpeg"), "jpeg", jpegs), path)


def test_a_page_written_again_takes_the_thumbnails_of_unchanged_files_from_the_last_gallery(tmp_path):
    """A page made again for one group's change takes the thumbnails of its unchanged files
    from the last gallery's pages: with the thumbnail jobs' previews emptied since, the
    gallery still equals one made from nothing with them; a last page whose thumbnails were
    altered since is not taken from, and a file of a new version never shows the old one."""
    groups = {g: (float(g % 200), 1, 1, "s1") for g in range(400)}
    db, folder = _gallery_input(tmp_path / "in", groups)
    report = tmp_path / "report"
    make_report(db, report, 200, previews=sorted(folder.glob("*.previews.parquet")))
    pick, other = 17, 18  # two groups on one page, one changed after another
    on = {p.name for p in pages_of(report) if f"/nowhere/{pick}a.jpg" in p.read_text()}
    assert on and all(f"/nowhere/{other}a.jpg" in (report / "data" / name).read_text() for name in on)

    groups[pick] = (groups[pick][0] + 0.5,) + groups[pick][1:]  # its page is written again
    db, folder = _gallery_input(tmp_path / "in", groups)
    previews = sorted(folder.glob("*.previews.parquet"))
    fresh = make_report(db, tmp_path / "fresh", 200, previews=previews)
    _without_jpegs(previews)
    index = make_report(db, report, 200, previews=previews)
    assert _gallery_files(index.parent) == _gallery_files(fresh.parent)
    assert not [p for p in pages_of(report) if p.name.endswith(".unshared.js")]

    # a thumbnail altered in the last gallery: that page gives none, the previews do
    page = next(p for p in pages_of(report) if f"/nowhere/{pick}a.jpg" in p.read_text())
    data = page.read_bytes()
    at = data.rfind(b'"data:image/jpeg;base64,') + len(b'"data:image/jpeg;base64,')
    page.write_bytes(data[:at] + (b"A" if data[at : at + 1] != b"A" else b"B") + data[at + 1 :])
    groups[other] = (groups[other][0] + 0.5,) + groups[other][1:]
    db, folder = _gallery_input(tmp_path / "in", groups)
    previews = sorted(folder.glob("*.previews.parquet"))
    fresh = make_report(db, tmp_path / "fresh2", 200, previews=previews)
    index = make_report(db, report, 200, previews=previews)
    assert _gallery_files(index.parent) == _gallery_files(fresh.parent)

    # a new version of a file: never the last gallery's thumbnail of the old one
    groups[pick] = groups[pick][:2] + (groups[pick][2] + 1,) + groups[pick][3:]
    db, folder = _gallery_input(tmp_path / "in", groups)
    previews = sorted(folder.glob("*.previews.parquet"))
    _without_jpegs(previews)
    index = make_report(db, report, 200, previews=previews)
    shown = {f["path"]: f["thumb"] for p in pages_of(index.parent) for g in loaded(p, "page") for f in g["files"]}
    assert shown[f"/nowhere/{pick}b.jpg"] is None  # not decodable here, and no preview
    assert shown[f"/nowhere/{pick}a.jpg"] is not None and shown[f"/nowhere/{other}a.jpg"] is not None


@pytest.mark.parametrize(
    "index",
    [
        b"{not json",
        b'{"format": "fast-diff thumbnail index 0", "pages": {}}',
        b'{"format": "fast-diff thumbnail index 1", "pages": []}',
        b'{"format": "fast-diff thumbnail index 1", "pages": {"x.js": {"thumbs": 1, "files": [[1]]}}}',
        None,  # gone
    ],
)
def test_a_damaged_or_missing_thumbnail_index_takes_nothing_and_is_made_again(tmp_path, index):
    """The last gallery's thumbnail index cut, of another format, of the wrong shapes, or
    gone: the next gallery takes no thumbnail through it, and still equals one made from
    nothing (its own index included)."""
    from fast_diff_py._report import THUMBNAIL_INDEX

    groups = {g: (float(g % 200), 1, 1, "s1") for g in range(400)}
    db, folder = _gallery_input(tmp_path / "in", groups)
    report = tmp_path / "report"
    make_report(db, report, 200, previews=sorted(folder.glob("*.previews.parquet")))
    if index is None:
        (report / "data" / THUMBNAIL_INDEX).unlink()
    else:
        (report / "data" / THUMBNAIL_INDEX).write_bytes(index)
    groups[17] = (groups[17][0] + 0.5,) + groups[17][1:]
    db, folder = _gallery_input(tmp_path / "in", groups)
    previews = sorted(folder.glob("*.previews.parquet"))
    fresh = make_report(db, tmp_path / "fresh", 200, previews=previews)
    made = make_report(db, report, 200, previews=previews)
    assert _gallery_files(made.parent) == _gallery_files(fresh.parent)
    # the index damaged again, and no previews to take: the page written again has none
    groups[18] = (groups[18][0] + 0.5,) + groups[18][1:]
    (report / "data" / THUMBNAIL_INDEX).write_bytes(index or b"")
    db, folder = _gallery_input(tmp_path / "in", groups)
    _without_jpegs(sorted(folder.glob("*.previews.parquet")))
    made = make_report(db, report, 200, previews=sorted(folder.glob("*.previews.parquet")))
    shown = [f["thumb"] for p in pages_of(made.parent) for g in loaded(p, "page") for f in g["files"]]
    assert None in shown and any(shown)  # the page written again, and those taken as they were


def test_previews_of_rows_no_longer_in_the_index_are_not_shown(tmp_path):
    """A shard's previews may hold a row of a file gone or changed since (its index shard
    no longer holds that path); the preview shown for a path is that of the shard whose
    index holds it, wherever the stale one lies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fast_diff_py._formats import PREVIEW_SCHEMA

    old, new = tmp_path / "old.previews.parquet", tmp_path / "new.previews.parquet"
    table = {"path": ["/p/a.jpg", "/p/b.jpg"], "jpeg": [b"a before", b"b"]}
    pq.write_table(pa.table(table, schema=PREVIEW_SCHEMA), old)
    pq.write_table(pa.table({"path": ["/p/a.jpg"], "jpeg": [b"a now"]}, schema=PREVIEW_SCHEMA), new)
    shown = {"/p/a.jpg", "/p/b.jpg"}
    live = {"/p/b.jpg"}  # the old shard's index holds b only
    for files, rows in (([old, new], [live, None]), ([new, old], [None, live])):
        assert _report._PreviewIndex(files, shown, rows).read(shown) == {"/p/a.jpg": b"a now", "/p/b.jpg": b"b"}
    # without the rows, each file's every row counts (the last one read wins)
    assert _report._PreviewIndex([new, old], shown).read(shown)["/p/a.jpg"] == b"a before"
