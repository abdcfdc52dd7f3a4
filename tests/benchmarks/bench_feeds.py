"""Feeds: a full rebuild through the publish function the pipelines use, beside sqlite3 + lxml
writing the same files (Atom and RSS of `all`, of each agency, of each agency × language, and
the OPML); then incremental publishes after 1, 50 and every agency changed."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lxml import etree

from crawler.items import LANGS
from crawler.runner import project_settings
from crawler.store import Archive
from tests.benchmarks import datagen
from tests.benchmarks.harness import Bench, Result, group, progress, side_by_side

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
BASE = "http://127.0.0.1:8080/"
ORDER = "published DESC, id DESC"
FIELDS = "agency, id, lang, url, title, published, updated, summary, body_html, categories"
LIMIT = 50


def _publish(settings: Any, **kwargs: Any) -> Any:
    from crawler.pipelines import publish

    return publish(settings, **kwargs)


# --- the baseline: sqlite3 + lxml -------------------------------------------------------------


def _rows(conn: sqlite3.Connection, agency: str | None, lang: str | None) -> list[sqlite3.Row]:
    where = "incomplete = 0 AND published IS NOT NULL"
    if agency is not None and lang is not None:
        return conn.execute(f"SELECT {FIELDS} FROM items WHERE {where} AND agency = ? AND "
                            f"lang = ? ORDER BY {ORDER} LIMIT {LIMIT}", (agency, lang)).fetchall()
    if agency is not None:  # one index range per language, merged
        found = [r for one in LANGS for r in _rows(conn, agency, one)]
        return sorted(found, key=lambda r: (r["published"], r["id"]), reverse=True)[:LIMIT]
    return conn.execute(f"SELECT {FIELDS} FROM items WHERE {where} ORDER BY {ORDER} "
                        f"LIMIT {LIMIT}").fetchall()


def _translations(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> dict[tuple, list]:
    keys = {(r["agency"], r["id"]) for r in rows}
    out: dict[tuple, list] = {}
    for agency in {a for a, _ in keys}:
        ids = [i for a, i in keys if a == agency]
        marks = ", ".join("?" * len(ids))
        for t in conn.execute(f"SELECT agency, id, lang, url FROM items WHERE agency = ? AND "
                              f"id IN ({marks})", (agency, *ids)):
            out.setdefault((t["agency"], t["id"]), []).append((t["lang"], t["url"]))
    return out


def _sub(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def lxml_atom(rel: str, title: str, rows: Sequence[Any], links: dict[tuple, list]) -> bytes:
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    self_url = f"{BASE}feeds/{rel}.atom"
    _sub(feed, "id", self_url)
    _sub(feed, "title", title)
    _sub(feed, "updated", max((r["published"] for r in rows), default="1970-01-01T00:00:00Z"))
    _sub(feed, "link", href=self_url, rel="self", type="application/atom+xml")
    _sub(_sub(feed, "author"), "name", "gov.kz")
    _sub(feed, "generator", "baseline")
    for r in rows:
        entry = _sub(feed, "entry")
        _sub(entry, "id", r["url"])
        _sub(entry, "title", r["title"])
        _sub(entry, "updated", r["updated"])
        _sub(entry, "published", r["published"])
        _sub(entry, "link", href=r["url"])
        for lang, url in links.get((r["agency"], r["id"]), ()):
            if lang != r["lang"]:
                _sub(entry, "link", href=url, rel="related", hreflang=lang, type="text/html")
        _sub(entry, "content", r["body_html"], type="html")
        _sub(entry, "summary", r["summary"])
        _sub(entry, "category", term="Новости")
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def lxml_rss(rel: str, title: str, rows: Sequence[Any]) -> bytes:
    rss = etree.Element("rss", version="2.0", nsmap={"atom": ATOM, "content": CONTENT})
    channel = _sub(rss, "channel")
    _sub(channel, "title", title)
    _sub(channel, "link", "https://www.gov.kz/")
    _sub(channel, "description", title)
    _sub(channel, f"{{{ATOM}}}link", href=f"{BASE}feeds/{rel}.rss", rel="self",
         type="application/rss+xml")
    for r in rows:
        item = _sub(channel, "item")
        _sub(item, "title", r["title"])
        _sub(item, "link", r["url"])
        _sub(item, "guid", r["url"], isPermaLink="true")
        _sub(item, "pubDate", r["published"])
        _sub(item, "description", r["summary"])
        _sub(item, f"{{{CONTENT}}}encoded", r["body_html"])
        _sub(item, "category", "Новости")
    return etree.tostring(rss, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def json_feed(rel: str, title: str, rows: list[sqlite3.Row]) -> bytes:
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": title,
        "feed_url": f"{BASE}feeds/{rel}.json",
        "items": [{"id": r["url"], "url": r["url"], "title": r["title"],
                   "content_html": r["body_html"], "summary": r["summary"],
                   "date_published": r["published"], "date_modified": r["updated"],
                   "language": r["lang"], "tags": ["Новости"]} for r in rows],
    }, ensure_ascii=False, indent=2).encode()


def lxml_rebuild(db: Path, out: Path, formats: Iterable[str] = ("atom", "rss"),
                 gz: bool = False) -> int:
    """The feed files the project writes (`formats` per feed, each with a .gz copy when `gz`),
    from sqlite3 and lxml (json for a JSON Feed); returns the files written."""
    formats = tuple(formats)
    written = 0

    def put(path: Path, data: bytes) -> None:
        nonlocal written
        _write(path, data)
        written += 1
        if gz:
            _write(path.with_name(path.name + ".gz"), gzip.compress(data, 6, mtime=0))
            written += 1

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        groups = conn.execute("SELECT DISTINCT agency, lang FROM items ORDER BY agency, lang")
        langs: dict[str, list[str]] = {}
        for agency, lang in groups:
            langs.setdefault(agency, []).append(lang)
        plans: list[tuple[str, str | None, str | None]] = [("all", None, None)]
        for agency, found in langs.items():
            plans.append((agency, agency, None))
            plans += [(f"{agency}/{lang}", agency, lang) for lang in found]
        opml = etree.Element("opml", version="2.0")
        body = _sub(opml, "body")
        for rel, agency, lang in plans:
            rows = _rows(conn, agency, lang)
            title = f"{agency or 'all'} {lang or ''}"
            if "atom" in formats:
                put(out / f"{rel}.atom", lxml_atom(rel, title, rows, _translations(conn, rows)))
            if "rss" in formats:
                put(out / f"{rel}.rss", lxml_rss(rel, title, rows))
            if "json" in formats:
                put(out / f"{rel}.json", json_feed(rel, title, rows))
            for ext in formats:
                _sub(body, "outline", text=title, type="rss", xmlUrl=f"{BASE}feeds/{rel}.{ext}")
        put(out / "index.opml", etree.tostring(opml, xml_declaration=True, encoding="UTF-8",
                                               pretty_print=True))
        return written
    finally:
        conn.close()


# --- the scenarios ----------------------------------------------------------------------------


def feed_archive(bench: Bench) -> tuple[Path, int]:
    if "feed_archive" not in bench.cache:
        items, agencies = bench.sizes.feed_items, bench.sizes.feed_agencies
        progress(f"generating an archive of {items:,} items, {agencies:,} agencies for feeds")
        data = bench.dir("feeds-data")
        datagen.generate_archive(data / "news.db", items, agencies)
        bench.cache["feed_archive"] = (data, agencies)
    return bench.cache["feed_archive"]


def _files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file()
               and not any(part.startswith(".") for part in p.relative_to(root).parts))


def edit_agencies(db: Path, agencies: Iterable[str], round_: int) -> None:
    """Store an edit of one item per agency (its newest, in Russian) through save_item, as a
    crawl that found it changed would."""
    archive = Archive.open(db)
    try:
        for agency in agencies:
            newest = archive.feed_items(agency, "ru", 1)
            if not newest:
                continue
            row = newest[0]
            item = _as_item(row)
            archive.save_item(replace(item, title=f"{item.title} (edit {round_})"))
    finally:
        archive.close()


def _as_item(row: dict) -> Any:
    from crawler.items import NewsItem
    from crawler.timeutil import parse_iso

    return NewsItem(agency=row["agency"], id=row["id"], lang=row["lang"], url=row["url"],
                    title=row["title"], published=parse_iso(row["published"]),
                    body_text=row["body_text"], body_html=row["body_html"],
                    categories=list(row["categories"]), summary=row["summary"],
                    views=row["views"], source=row["source"])


@group("feeds", ("feeds_full", "publish_1", "publish_50", "publish_all"))
def feeds(bench: Bench) -> Iterable[Result]:
    data, agencies = feed_archive(bench)
    # Only the generated agencies are enabled: no empty feeds for the registry's own.
    slugs = [datagen.slug(i) for i in range(agencies)]
    settings = project_settings({"GOVKZ_DATA": str(data),
                                 "GOVKZ_AGENCIES_ENABLED": ",".join(slugs)})
    ours_dir = data / "feeds"
    theirs_dir = bench.dir("feeds-baseline")
    counted: dict[str, int] = {}

    def project() -> float:
        shutil.rmtree(ours_dir, ignore_errors=True)
        start = time.perf_counter()
        _publish(settings, full=True)
        spent = time.perf_counter() - start
        counted["project"] = _files(ours_dir)
        return spent

    def baseline() -> float:
        shutil.rmtree(theirs_dir, ignore_errors=True)
        start = time.perf_counter()
        # The formats the project wrote for one agency's feed (it ran first).
        made = {p.suffix.lstrip(".") for p in ours_dir.glob(f"{slugs[0]}.*")}
        counted["baseline"] = lxml_rebuild(data / "news.db", theirs_dir,
                                           made & {"atom", "rss", "json"}, gz="gz" in made)
        return time.perf_counter() - start

    ours, theirs = side_by_side(project, baseline, bench.sizes.heavy_repeats)
    yield Result("feeds_full", ours, theirs, "s", target=3.0, note=(
        f"{bench.sizes.feed_items:,} items, {agencies:,} agencies x 3 languages: "
        f"{counted['project']:,} files (baseline {counted['baseline']:,}); "
        f"{counted['project'] / ours:.0f} files/s; baseline: no sanitizing, same formats"))
    # Incremental: the feeds are current (the last run above); k agencies change, then publish.
    project()
    edits = iter(range(1, 1_000_000))
    for name, k in (("publish_1", 1), ("publish_50", min(50, agencies)),
                    ("publish_all", agencies)):
        written: list[int] = []

        def incremental(k: int = k, written: list[int] = written) -> float:
            edit_agencies(data / "news.db", slugs[:k], next(edits))
            start = time.perf_counter()
            report = _publish(settings)
            spent = time.perf_counter() - start
            written.append(len(report.written))
            return spent

        # A median, as every other figure here: one publish of one agency takes a tenth of a
        # second, and a single sample of that on a busy machine said little.
        repeats = bench.sizes.heavy_repeats if k == agencies else bench.sizes.repeats
        spent = statistics.median(incremental() for _ in range(max(1, repeats)))
        share = ours * k / agencies  # the full rebuild's cost, in proportion
        target = {"publish_50": 3.0}.get(name)
        yield Result(name, spent, share, "s", target=target, note=(
            f"{k} of {agencies} agencies changed (one item each, ru), median of "
            f"{len(written)}; {max(written)} files rewritten (each with its .gz); baseline = "
            "the full rebuild's time x k / agencies"))
