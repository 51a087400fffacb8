"""The gallery: groups of duplicates as rows of thumbnails, to review in a browser.

``make_report`` writes ``index.html`` and what it loads into one folder that works from the
file system (no server, no network): the page loads ``data/meta.js`` and then one page of
groups at a time (``data/groups-<digest>.js``, with its thumbnails inside), so a collection
of 100,000 groups opens as fast as one of ten. Thumbnails are made from the images
themselves, not from the comparison thumbnails: the thumbnail jobs make them from the same
decoding (previews, ``preview_jpeg``), and a file without one is read and decoded again.
Files that could not be read are listed on pages of their own.

Pages are cut where their groups say (``_pages``) and named by a digest of what they show and
of the version of each file and the settings its preview was made under (``_page_text``):
the next gallery takes a page of the same name from the last one as it is, so that a rerun
after a small change writes a few pages, and the gallery equals one made from nothing. A page
written again takes the thumbnails of its unchanged files from the last gallery's pages too
(``_LastThumbnails``, by the file index ``THUMBNAIL_INDEX`` beside them), rather than reading
the thumbnail jobs' previews again.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import html
import json
import logging
import os
import shutil
import sqlite3
import time
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

from ._errors import OutputError
from ._formats import PREVIEW_MADE_AS, REPORT_INDEX, REPORT_MARKER, FileStatus, ours, pair_filter
from ._io import atomic_path, link_or_copy
from ._paths import native
from ._summary import Found, LastRun, _groups, summarize, write_summary

__all__ = [
    "GROUPS_PER_PAGE",
    "PAGE_MAX_GROUPS",
    "PAGE_MIN_GROUPS",
    "finish_run",
    "keep_rank",
    "kept_because",
    "link_gallery",
    "make_report",
    "replace_report",
    "report_run",
]

logger = logging.getLogger(__name__)

# groups per page of the gallery: about GROUPS_PER_PAGE on average, from PAGE_MIN_GROUPS to
# PAGE_MAX_GROUPS, cut where a group's best file says (content-defined, as the index shards
# are), so that a change moves few pages' ends
GROUPS_PER_PAGE = 100
PAGE_MIN_GROUPS = 50
PAGE_MAX_GROUPS = 150
_PAGE_CUT_EVERY = 60  # past PAGE_MIN_GROUPS, one group in this many ends a page
BROKEN_PER_PAGE = 1000
# what a page of groups is named and made by: a new definition writes every page again
_PAGE_FORMAT = "fast-diff gallery page 2"
# the end of a page's name whose thumbnails are not all the thumbnail jobs': never taken again
_UNSHARED = ".unshared.js"
# which thumbnail of which page is whose: for each page whose thumbnails are all the
# thumbnail jobs' (not _UNSHARED), a digest of its thumbnails as written and, in the page's
# order, a digest of each file's path, version and preview settings (_file_digest); the
# next gallery takes from it the thumbnails of files unchanged (the browser never loads it)
THUMBNAIL_INDEX = "thumbnail-index.json"
_THUMBNAIL_INDEX_FORMAT = "fast-diff thumbnail index 1"
_PAGE_END = b"]);\n"
# what a page shows of each file (the rest of a file's entry only serves to make the page)
_SHOWN = ("path", "px", "py", "size", "date", "dif", "best", "why", "url", "abs")


def keep_rank(px: int, py: int, file_size: int, path: str) -> tuple[int, int, str]:
    """What difPy's rules keep of a group: the highest resolution, then the largest file (the
    path decides between equals)."""
    return (px + py, file_size, path)


def kept_because(best: Sequence[Any], others: Sequence[Sequence[Any]]) -> str:
    """Why ``keep_rank`` keeps ``best`` over ``others`` (rows of key, path, px, py, file
    size), in the gallery's words: the first part of its rank that no other file reaches."""

    def rank(r: Sequence[Any]) -> tuple[int, int, str]:
        return keep_rank(r[2], r[3], r[4], r[1])

    ours, nearest = rank(best), max(map(rank, others), default=None)
    if nearest is None or nearest[0] < ours[0]:
        return "highest resolution"
    if nearest[1] < ours[1]:
        return "largest file of the highest resolution"
    return "as large as another in resolution and bytes; chosen by its path"


def _thumbnail(path: str) -> bytes | None:
    """The gallery's thumbnail of the image at ``path`` (``preview_jpeg``), read and decoded
    again (None where the file cannot be read now), JPEGs at reduced scale."""
    import cv2

    from ._decode import PREVIEW_SIDE, decode_image, preview_jpeg
    from ._errors import ImageReadError
    from ._files import read_file

    try:
        data, _ = read_file(path)
        # a JPEG decoded at the DCT scale that keeps about the thumbnail's short side
        img, _ = decode_image(data, reduce_for=PREVIEW_SIDE // 4)
        return preview_jpeg(img)
    except (ImageReadError, OSError, cv2.error) as exc:
        logger.warning("%r: no thumbnail: %s", path, exc)
        return None


class _PreviewIndex:
    """Where the thumbnail jobs' previews (PREVIEW_SCHEMA files) hold each file's gallery
    thumbnail, and the settings each file's was made under (PREVIEW_MADE_AS; None where the
    file does not say): the paths of every file and their footers, no JPEG read."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        files: set[str],
        live: Sequence[set[str] | None] | None = None,
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.files: list[str | os.PathLike[str]] = []
        self.where: dict[str, tuple[int, int]] = {}  # path -> (previews file, row)
        self.made_as: list[str | None] = []
        self.groups: list[list[int]] = []  # each previews file's row group starts
        for at, path in enumerate(paths):
            try:
                with pq.ParquetFile(path) as pf:  # not read_table: its dataset module costs a start
                    names = pf.read(columns=["path"]).column("path").to_pylist()
                    meta = pf.schema_arrow.metadata or {}
                    starts = [0]
                    for group in range(pf.metadata.num_row_groups):
                        starts.append(starts[-1] + pf.metadata.row_group(group).num_rows)
            except (OSError, IndexError, pa.ArrowException) as exc:  # the gallery then decodes those files
                logger.warning("%r: previews not read: %s", os.fspath(path), exc)
                continue
            n = len(self.files)
            self.files.append(path)
            made_as = meta.get(PREVIEW_MADE_AS.encode())
            self.made_as.append(made_as.decode() if made_as is not None else None)
            self.groups.append(starts)
            # only the paths its index shard holds (``live``): a row of a file gone or
            # changed since (a shard kept from the last index) may name another's path
            holds = live[at] if live is not None else None
            for row, name in enumerate(names):
                if name in files and (holds is None or name in holds):
                    self.where[name] = (n, row)

    def made_under(self, path: str) -> str | None:
        """The settings the preview of ``path`` was made under; None where there is none."""
        at = self.where.get(path)
        return self.made_as[at[0]] if at is not None else None

    def read(self, paths: set[str]) -> dict[str, bytes]:
        """The previews of ``paths`` (those it has), reading only the row groups
        (PREVIEW_ROW_GROUP) that hold one."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted: dict[int, dict[int, list[tuple[int, str]]]] = {}  # file -> row group -> rows
        for path in paths:
            at = self.where.get(path)
            if at is not None:
                n, row = at
                group = bisect.bisect_right(self.groups[n], row) - 1
                wanted.setdefault(n, {}).setdefault(group, []).append((row, path))
        found: dict[str, bytes] = {}
        for n, groups in wanted.items():
            try:
                with pq.ParquetFile(self.files[n]) as pf:
                    for group, rows in groups.items():
                        jpegs = pf.read_row_group(group, columns=["jpeg"]).column("jpeg")
                        first = self.groups[n][group]
                        for row, path in rows:
                            jpeg = jpegs[row - first].as_py()
                            if jpeg is not None:
                                found[path] = jpeg
            except (OSError, IndexError, pa.ArrowException) as exc:  # the gallery then decodes those files
                logger.warning("%r: previews not read: %s", os.fspath(self.files[n]), exc)
        return found


def _date(created: float | None) -> str:
    """``created`` as local time to the minute; "" for none, or for a time the platform
    cannot convert (a file system's garbage)."""
    if not created or created <= 0:
        return ""
    try:
        t = time.localtime(created)
    except (OverflowError, ValueError, OSError):
        return ""
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}"


def _read_groups(con: sqlite3.Connection, threshold: float) -> tuple[list[dict[str, Any]], Found]:
    """Every group of files joined by stored pairs within ``threshold``, each file with its
    ``dif`` to the group's best file (None where no pair of the two is stored), sorted by the
    group's largest such ``dif``; and the stored pairs and groups as ``summarize`` counts
    them (``Found``)."""
    difs: dict[tuple[int, int], float] = {}
    stored = 0
    for a, b, d in con.execute(f"SELECT key_a, key_b, dif FROM dif_table d WHERE {pair_filter()}", (threshold,)):
        difs[(a, b)] = difs[(b, a)] = d
        stored += 1
    _, groups = _groups((a, b) for a, b in difs if a < b)
    found = Found(stored, groups)
    has_state = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file_state'").fetchone()
    # each file's name as bytes and the version of it that was decoded (none without file_state)
    state = "s.path_bytes, s.dev, s.inode, s.file_size, s.mtime_ns" if has_state else "NULL, NULL, NULL, NULL, NULL"
    join = "LEFT JOIN file_state s ON s.key = d.key" if has_state else ""
    # every file of a group, in one query (a temporary table of their keys)
    con.execute("CREATE TEMP TABLE IF NOT EXISTS gallery_keys (key INTEGER PRIMARY KEY)")
    con.execute("DELETE FROM gallery_keys")
    con.executemany("INSERT INTO gallery_keys VALUES (?)", ((k,) for members in groups for k in members))
    by_key = {
        row[0]: row
        for row in con.execute(
            f"SELECT d.key, d.path, d.px, d.py, d.file_size, d.created, {state} "
            f"FROM gallery_keys g JOIN directory d ON d.key = g.key {join}"
        )
    }
    out = []
    for members in groups:
        rows = [by_key[k] for k in members]
        best = max(rows, key=lambda r: keep_rank(r[2], r[3], r[4], r[1]))
        files = []
        for key, path, px, py, size, created, raw, *version in rows:
            dif = 0.0 if key == best[0] else difs.get((key, best[0]))
            files.append(
                {
                    "key": key,
                    "version": version if version[0] is not None else None,
                    "path": path,
                    "raw": raw,
                    "px": px,
                    "py": py,
                    "size": size,
                    "date": _date(created),
                    "dif": dif,
                    "best": key == best[0],
                }
            )
            if key == best[0]:
                files[-1]["why"] = kept_because(best, [r for r in rows if r is not best])
        files.sort(key=lambda f: (not f["best"], f["dif"] is None, f["dif"] or 0.0, f["path"]))
        worst = max(f["dif"] for f in files if f["dif"] is not None)
        out.append({"dif": worst, "files": files})
    out.sort(key=lambda g: (g["dif"], g["files"][0]["path"]))
    return out, found


def _pages(groups: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """``groups`` (in the gallery's order) cut into pages of PAGE_MIN_GROUPS to
    PAGE_MAX_GROUPS groups: after a group whose best file's path hashes to a multiple of
    _PAGE_CUT_EVERY, or at the most. A group added, removed or changed moves the end of its
    own page and, past a page cut at the most, of the next: the other pages stay as they
    were."""
    page: list[dict[str, Any]] = []
    for group in groups:
        page.append(group)
        best = group["files"][0]["path"].encode("utf-8", "surrogateescape")
        if len(page) >= PAGE_MAX_GROUPS or (len(page) >= PAGE_MIN_GROUPS and zlib.crc32(best) % _PAGE_CUT_EVERY == 0):
            yield page
            page = []
    if page:
        yield page


def _page_text(chunk: list[dict[str, Any]]) -> tuple[str, str, bool]:
    """The JSON of a page's groups, the page's file name, and whether a page of that name in
    the last gallery is this page: its name is a digest of what it shows and of the version
    and preview settings of each of its files (only where all are known)."""
    shown = [{"dif": g["dif"], "files": [{k: f[k] for k in _SHOWN if k in f} for f in g["files"]]} for g in chunk]
    text = json.dumps(shown, ensure_ascii=False).replace("</", "<\\/")
    files = [f for g in chunk for f in g["files"]]
    known = [(f["version"], f["made_as"]) for f in files]
    digest = hashlib.blake2b(digest_size=12)
    for part in (_PAGE_FORMAT, text, json.dumps(known)):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return text, f"groups-{digest.hexdigest()}.js", all(v is not None and m is not None for v, m in known)


def _page_entry(chunk: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A page's line in ``meta.js``."""
    return {"file": name, "groups": len(chunk), "dif_min": chunk[0]["dif"], "dif_max": chunk[-1]["dif"]}


def _page_head(name: str, text: str) -> bytes:
    """How a page's file begins: all of it but its thumbnails (``_write_page``)."""
    return f"FD.page({json.dumps(name)}, {text}, [".encode()


def _link_page(source: Path, target: Path, head: bytes) -> bool:
    """Take the last gallery's page ``source`` into the new one (a hard link, else a copy)
    where it still begins with ``head`` and ends as a page ends; False where there is none
    or it has changed since it was written (it is then written again)."""
    try:
        with open(source, "rb") as fh:
            if fh.read(len(head)) != head or fh.seek(0, os.SEEK_END) < len(head) + 4:
                return False
            fh.seek(-4, os.SEEK_END)
            if fh.read() != b"]);\n":
                return False
    except OSError:
        return False
    try:
        os.link(source, target)
    except FileNotFoundError:
        return False
    except OSError:
        try:
            shutil.copyfile(source, target)
        except OSError:
            return False
    return True


def _data_uri(jpeg: bytes) -> str:
    """A thumbnail as the page holds it: a JPEG's data URI."""
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode('ascii')}"


def _write_page(path: Path, name: str, text: str, thumbs: list[str | None]) -> str:
    """A page of groups: ``FD.page(name, groups, thumbnails)``, the thumbnails (data URIs,
    ``_data_uri``, one per file in the page's order, None for none) written as they are
    rather than through the JSON encoder (a page's text is mostly these, and they need no
    escaping). Returns the digest of the page's thumbnails as written (``_thumbs_digest``)."""
    tail = ("[" + ",".join(f'"{uri}"' if uri else "null" for uri in thumbs)).encode("ascii") + _PAGE_END
    with open(path, "wb") as fh:
        fh.write(_page_head(name, text)[:-1])  # the head ends with the tail's "["
        fh.write(tail)
    return _thumbs_digest(tail)


def _thumbs_digest(tail: bytes) -> str:
    """The digest of a page's thumbnails as written: from the "[" that opens them to its end."""
    return hashlib.blake2b(tail, digest_size=16).hexdigest()


def _file_digest(f: dict[str, Any]) -> str | None:
    """What a thumbnail of the thumbnail jobs shows: the file's path, version and preview
    settings; None where either is unknown."""
    if f["version"] is None or f["made_as"] is None:
        return None
    known = json.dumps([f["path"], f["version"], f["made_as"]], ensure_ascii=False)
    return hashlib.blake2b(known.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _page_tail(path: Path) -> bytes | None:
    """A page's thumbnails as written: from the "[" that opens them to its end (no data URI
    holds a "["); None where the page cannot be read or does not end as a page ends."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    start = data.rfind(b"[")
    return data[start:] if start >= 0 and data.endswith(_PAGE_END) else None


class _LastThumbnails:
    """The thumbnails of the last gallery's pages (``THUMBNAIL_INDEX``), by file digest
    (``_file_digest``): a page is read only when one of its thumbnails is asked for, and
    taken only while its thumbnails are as they were written (their digest); an index
    missing, of another format or damaged gives none."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.pages: dict[str, dict[str, Any]] = {}
        self.where: dict[str, tuple[str, int]] = {}
        try:
            index = json.loads((data / THUMBNAIL_INDEX).read_bytes())
            if index.get("format") != _THUMBNAIL_INDEX_FORMAT:
                return
            for name, page in index["pages"].items():
                if "/" in name or not isinstance(page["thumbs"], str) or not isinstance(page["files"], list):
                    continue
                self.pages[name] = page
                for at, digest in enumerate(page["files"]):
                    self.where[digest] = (name, at)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self.pages, self.where = {}, {}

    def take(self, files: list[dict[str, Any]]) -> dict[int, str]:
        """The thumbnails (data URIs) the last gallery holds of ``files``, by ``id`` of each."""
        wanted: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for f in files:
            at = self.where.get(f["digest"]) if f["digest"] is not None else None
            if at is not None:
                wanted.setdefault(at[0], []).append((at[1], f))
        found: dict[int, str] = {}
        for name, rows in wanted.items():
            page = self.pages[name]
            tail = _page_tail(self.data / name)
            if tail is None or _thumbs_digest(tail) != page["thumbs"]:
                continue
            try:
                thumbs = json.loads(tail[: -len(_PAGE_END) + 1])
            except ValueError:
                continue
            if not isinstance(thumbs, list) or len(thumbs) != len(page["files"]):
                continue
            for row, f in rows:
                uri = thumbs[row]
                if isinstance(uri, str) and uri.startswith("data:image/jpeg;base64,"):
                    found[id(f)] = uri
        return found


def _write_js(path: Path, call: str, *args: Any) -> None:
    """``call(args...)`` in ``path``, each argument as JSON."""
    text = ", ".join(json.dumps(a, ensure_ascii=False) for a in args).replace("</", "<\\/")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{call}({text});\n")


def _file_uri(path: str) -> str:
    """The ``file://`` URI of the absolute ``path`` (``Path.as_uri``'s)."""
    return "file://" + quote_from_bytes(os.fsencode(path))


class _Absolute:
    """``os.path.abspath`` of paths: a path already absolute and normal is its own, another
    is its folder's (made once per folder) and its name."""

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        if path.startswith("/") and "/." not in path and "//" not in path and not path.endswith("/"):
            return path  # already absolute and normal: no ".", ".." or empty part
        folder, name = os.path.split(path)
        if not folder or name in ("", ".", ".."):
            return os.path.abspath(path)
        done = self._folders.get(folder)
        if done is None:
            done = self._folders[folder] = os.path.abspath(folder)
        return os.path.join(done, name)


def make_report(
    db_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    threshold: float,
    *,
    threads: int = 1,
    previews: Sequence[str | os.PathLike[str]] = (),
    preview_paths: Sequence[set[str] | None] | None = None,
    storage: tuple[str, str] | None = None,
) -> Path:
    """Write the gallery of the database at ``db_path`` into ``out_dir`` (replacing what a
    previous gallery left there) and return the path of its ``index.html`` (``_write_report``
    with the same arguments)."""
    return _write_report(
        db_path, out_dir, threshold, threads=threads, previews=previews, preview_paths=preview_paths, storage=storage
    )[0]


def _write_report(
    db_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    threshold: float,
    *,
    threads: int = 1,
    previews: Sequence[str | os.PathLike[str]] = (),
    preview_paths: Sequence[set[str] | None] | None = None,
    storage: tuple[str, str] | None = None,
) -> tuple[Path, Found]:
    """Write the gallery of the database at ``db_path`` into ``out_dir`` (replacing what a
    previous gallery left there). Groups join the stored pairs with ``dif <= threshold``.
    ``previews`` (the thumbnail jobs' PREVIEW_SCHEMA files) give the thumbnails they hold,
    of the paths ``preview_paths`` names for each (the paths of its index shard; all where
    None); the other files are read and decoded again.

    With ``storage`` (``(prefix, folder)``: the photos and the gallery in a Snakemake storage,
    the gallery's folder below ``prefix``) each image links to its photo by a path relative to
    that folder, which holds wherever the storage is copied or served. Returns the path of
    the ``index.html`` and what was found (``Found``, for ``summarize``)."""
    out = Path(out_dir)
    _check_ours(out)
    con = sqlite3.connect(f"file:{os.fspath(db_path)}?mode=ro", uri=True)
    try:
        groups, found = _read_groups(con, threshold)
        broken = con.execute(
            "SELECT path, error FROM directory WHERE success = ? ORDER BY key", (int(FileStatus.ERROR),)
        ).fetchall()
        roots = [r[0] for r in con.execute("SELECT path FROM dir_index_lookup ORDER BY dir_index")]
        if storage is None:
            roots = [os.path.abspath(r) for r in roots]
        files = con.execute("SELECT COUNT(*) FROM directory").fetchone()[0]
    finally:
        con.close()
    with atomic_path(out) as tmp:
        (tmp / "data").mkdir(parents=True)
        (tmp / REPORT_MARKER).write_text("a gallery written by fast-diff; the next one replaces this folder\n")
        members = [f for g in groups for f in g["files"]]
        index = _PreviewIndex(previews, {f["path"] for f in members}, preview_paths) if previews and members else None
        absolute = _Absolute()
        for f in members:
            f["made_as"] = index.made_under(f["path"]) if index is not None else None
            if storage is None:
                f["url"] = _file_uri(absolute(native(f["path"], f["raw"])))
                f["abs"] = absolute(f["path"])  # what the folder filter matches
            else:
                prefix, folder = storage
                f["url"] = quote(os.path.relpath(f["path"], folder).replace(os.sep, "/"))
                f["abs"] = f"{prefix.rstrip('/')}/{os.path.normpath(f['path'])}"
        # each page named by what it shows: a page of the last gallery with the same name is
        # the same page, taken as it is (a hard link); the others are written
        last = _LastThumbnails(out / "data")
        pages: list[dict[str, Any] | None] = []
        thumb_index: dict[str, dict[str, Any]] = {}  # THUMBNAIL_INDEX of the pages not _UNSHARED
        to_write = []
        for n, chunk in enumerate(_pages(groups)):
            text, name, reusable = _page_text(chunk)
            if reusable and _link_page(out / "data" / name, tmp / "data" / name, _page_head(name, text)):
                pages.append(_page_entry(chunk, name))
                # the page's line of the last index (a page of the same name shows the same
                # files in the same versions), else the page's own
                entry = last.pages.get(name)
                if entry is not None and len(entry["files"]) != sum(len(g["files"]) for g in chunk):
                    entry = None
                if entry is None:
                    tail = _page_tail(tmp / "data" / name)
                    if tail is not None:
                        shown = [_file_digest(f) for g in chunk for f in g["files"]]
                        entry = {"thumbs": _thumbs_digest(tail), "files": shown}
                if entry is not None:
                    thumb_index[name] = entry
            else:
                to_write.append((n, chunk, text, name, reusable))
                pages.append(None)
        written = [f for _, chunk, *_ in to_write for g in chunk for f in g["files"]]
        for f in written:
            f["digest"] = _file_digest(f)
        # the thumbnails of unchanged files from the last gallery's pages, the others from
        # the thumbnail jobs' previews
        kept = last.take(written) if written else {}
        wanted = {f["path"] for f in written if id(f) not in kept}
        made = index.read(wanted) if index is not None and wanted else {}
        # the files the thumbnail jobs left no preview of are read and decoded again
        missing = [f for f in written if id(f) not in kept and f["path"] not in made]
        if missing:  # OpenCV is loaded only to decode
            import cv2

            cv2.setNumThreads(1)
            with ThreadPoolExecutor(max(1, threads)) as pool:
                again = list(pool.map(lambda f: _thumbnail(native(f["path"], f["raw"])), missing))
        else:
            again = []
        decoded = {id(f): jpeg for f, jpeg in zip(missing, again)}
        for n, chunk, text, name, reusable in to_write:
            # each thumbnail inside its page (a data URI): one file per page, not per image
            in_page = [f for g in chunk for f in g["files"]]
            thumbs: list[str | None] = []
            for f in in_page:
                jpeg = made.get(f["path"]) if id(f) not in kept else None
                jpeg = jpeg or decoded.get(id(f))
                thumbs.append(kept.get(id(f)) or (_data_uri(jpeg) if jpeg else None))
            shared = reusable and not any(id(f) in decoded for f in in_page)
            if not shared:
                name = name.replace(".js", _UNSHARED)  # thumbnails not all the jobs': not taken again
            digest = _write_page(tmp / "data" / name, name, text, thumbs)
            if shared:
                thumb_index[name] = {"thumbs": digest, "files": [f["digest"] for f in in_page]}
            pages[n] = _page_entry(chunk, name)
        with open(tmp / "data" / THUMBNAIL_INDEX, "w", encoding="utf-8") as fh:
            json.dump(
                {"format": _THUMBNAIL_INDEX_FORMAT, "pages": thumb_index}, fh, separators=(",", ":"), sort_keys=True
            )
        broken_pages = 0
        for n, start in enumerate(range(0, len(broken), BROKEN_PER_PAGE), 1):
            rows = [{"path": p, "error": e} for p, e in broken[start : start + BROKEN_PER_PAGE]]
            _write_js(tmp / "data" / f"broken-{n:05d}.js", "FD.broken", n, rows)
            broken_pages = n
        meta = {
            "database": os.path.abspath(db_path),
            "threshold": threshold,
            "files": files,
            "groups": len(groups),
            "files_in_groups": len(members),
            "broken": len(broken),
            "pages": pages,
            "broken_pages": broken_pages,
            "folders": roots,
            "made": datetime.now().strftime("%Y-%m-%d %H:%M"),
        }
        _write_js(tmp / "data" / "meta.js", "FD.meta", meta)
        page = (Path(__file__).with_name("report.html")).read_text("utf-8")
        (tmp / REPORT_INDEX).write_text(page.replace("{title}", html.escape(os.path.basename(db_path))), "utf-8")
    logger.info(
        "gallery of %d groups (%d files) on %d pages, %d of them taken from the last gallery; "
        "of the pages written, %d thumbnails from the last gallery's pages, %d from the thumbnail jobs, "
        "%d files decoded again; %d unreadable files: %s",
        len(groups),
        len(members),
        len(pages),
        len(pages) - len(to_write),
        len(kept),
        len(made),
        len(missing),
        len(broken),
        out,
    )
    return out / REPORT_INDEX, found


def _check_ours(path: Path) -> None:
    if not ours(path):
        raise OutputError(
            f"{os.fspath(path)!r} exists and is not a fast-diff gallery: left as it is; "
            "move it, or write the gallery elsewhere"
        )


def replace_report(source: str | os.PathLike[str], target: str | os.PathLike[str], keep: bool = False) -> Path:
    """Move a finished gallery folder to ``target`` (replacing only a gallery there), or with
    ``keep`` link its files there (``link_gallery``); its index."""
    target = Path(target)
    _check_ours(target)
    if target.exists():
        shutil.rmtree(target)
    if keep:
        link_gallery(source, target)
    else:
        shutil.move(os.fspath(source), target)
    return target / REPORT_INDEX


def report_run(
    db_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    summary_file: str | os.PathLike[str],
    threshold: float,
    *,
    threads: int = 1,
    previews: Sequence[str | os.PathLike[str]] = (),
    preview_paths: Sequence[set[str] | None] | None = None,
    storage: tuple[str, str] | None = None,
    copy: str | os.PathLike[str] | None = None,
    benchmarks: str | os.PathLike[str] | None = None,
    gallery: str | os.PathLike[str] | None = None,
    shown: dict[str, Any] | None = None,
    timed: dict[str, float] | None = None,
    last_run: LastRun | None = None,
) -> tuple[Path, Path]:
    """The gallery (``make_report``, and its copy at ``copy``: ``link_gallery``), then the
    summary (``summarize``, naming ``gallery`` or else the gallery written, with the entries
    of ``shown``) in ``summary_file``. The summary's time of the report stage is the
    gallery's, taken here, and that of each stage in ``timed`` (seconds taken in the same
    job, which has no benchmark file yet); the other stages' are those of the jobs run
    since the last summary was written (a rerun's own). With ``last_run`` (that of the
    database this one replaced), the summary says what changed since. Returns the
    gallery's index and the summary."""
    try:  # the end of the last run, where there was one
        since: float | None = os.stat(summary_file).st_mtime
    except (OSError, ValueError):
        since = None
    started = time.monotonic()
    if last_run is not None:  # in the background while the gallery is made
        last_run.compare(db_path)
    index, found = _write_report(
        db_path, out_dir, threshold, threads=threads, previews=previews, preview_paths=preview_paths, storage=storage
    )
    if copy is not None:
        link_gallery(index.parent, copy)
    seconds = time.monotonic() - started
    summary = summarize(db_path, threshold, benchmarks, gallery or index, since, last_run, found)
    for stage, took in {**(timed or {}), "report": seconds}.items():
        summary["stages"][stage] = {"jobs": 1, "job_seconds": round(took, 2), "wall_seconds": round(took, 2)}
    summary.update(shown or {})
    write_summary(summary, summary_file)
    return index, Path(summary_file)


def finish_run(
    db_path: str | os.PathLike[str],
    *,
    roots_path: str,
    index_paths: Sequence[str],
    meta_paths: Sequence[str],
    pair_paths: Sequence[str],
    receipt: str | os.PathLike[str],
    kept: str | os.PathLike[str] | None,
    pairs_fingerprint: str | None,
    forget: Sequence[str | os.PathLike[str]],
    reuse_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    summary_file: str | os.PathLike[str],
    threshold: float,
    **report: Any,
) -> tuple[Path, Path]:
    """What ends a run, in one job: the database (``build_database``; what the one it
    replaces held is read first, ``LastRun``, for the summary's changes); then, while the
    gallery and the summary are made (``report_run`` with the keywords in ``report``), the
    pairs the next run takes again (``keep_pairs`` into ``kept``, where given, in a thread of
    its own: it is mostly Arrow's work, the gallery mostly Python's); the files of shards gone
    from the index (``forget_shards`` of ``forget``, where given), and last the database's
    ``receipt``. Returns the gallery's index and the summary."""
    from ._carry import keep_pairs
    from ._db import build_database, write_receipt
    from ._io import read_parquet
    from ._reuse import forget_shards

    started = time.monotonic()
    last_run = LastRun.read(db_path, threshold)  # what the summary compares this run with
    try:
        build_database(
            db_path, roots_path=roots_path, index_paths=index_paths, meta_paths=meta_paths, pair_paths=pair_paths
        )
        merged = time.monotonic() - started
        with ThreadPoolExecutor(1) as pool:
            keeping = (  # for the next run: the pairs of files that will not have changed
                pool.submit(
                    keep_pairs,
                    kept,
                    list(index_paths),
                    list(meta_paths),
                    list(pair_paths),
                    pairs_fingerprint=pairs_fingerprint,
                    threshold=threshold,
                )
                if kept
                else None
            )
            if forget:  # every thumbnail job of the index has run
                forget_shards(os.path.dirname(roots_path), forget, reuse_root)
            if len(report.get("previews", ())) == len(index_paths):  # one per index shard
                # the paths of each index shard: the previews of a shard kept from the last
                # index may hold rows of files gone or changed since
                shards = [read_parquet(p, columns=["path"]).column(0) for p in index_paths]
                report["preview_paths"] = [set(paths.to_pylist()) for paths in shards]
            made = report_run(
                db_path, out_dir, summary_file, threshold, timed={"merge": merged}, last_run=last_run, **report
            )
            if keeping is not None:
                keeping.result()  # its error is the job's (an error above stands: the pool waits)
    finally:
        if last_run is not None:
            last_run.close()
    write_receipt(receipt, db_path)
    return made


def link_gallery(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """A copy of the gallery folder ``source`` at ``target`` (a folder of the workflow's own,
    replaced whole), its files hard links where the file system allows, else copies."""

    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=link_or_copy)
    return target / REPORT_INDEX
