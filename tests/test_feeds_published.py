"""The feeds of a replay of the seeds, as a reader meets them: every enabled agency has valid
feeds from the first publish, every JSON Feed passes the JSON Feed 1.1 check, no OPML lists an
item twice, `govkz-monitor serve` answers /feeds/ with the index and .json as JSON Feed, and a
real reader (newsboat) imports index.ru.opml and reads every item of every feed it lists."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedcheck
import feedparser
import pytest
from cli_helpers import run_cli
from jsonfeed_check import check_json_feed
from lxml import etree
from serve_helpers import start_serving, stop

from crawler.agencies import AgencyRegistry
from crawler.config import resolve
from crawler.directory import crawl_targets
from crawler.items import NewsItem, item_url
from crawler.timeutil import parse_iso

NEWSBOAT = shutil.which("newsboat") or ""
OPMLS = ["index.opml", "index.kk.opml", "index.ru.opml", "index.en.opml"]
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
PICTURE = "/uploads/2026/5/20/фото.JPG"


@dataclass
class Published:
    data: Path
    config: Path
    port: int
    first: set[str]  # the Atom feeds the replay's own publish wrote

    @property
    def feeds(self) -> Path:
        return self.data / "feeds"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def served_at(self, name: str) -> str:
        return f"{self.base}feeds/{name}"

    def file_of(self, url: str) -> Path:
        assert url.startswith(f"{self.base}feeds/"), url
        return self.feeds / url.removeprefix(f"{self.base}feeds/")


def add_translations(db: Path) -> None:
    """The seeds are English pages only: give some of their items Russian and Kazakh versions
    (same agency and id), one with a picture, so the language feeds and OPMLs hold items."""
    from crawler.store import Archive

    archive = Archive.open(db)
    try:
        rows = archive.feed_items(lang="en", limit=200)
        chosen = [r for r in rows if r["agency"] in ("mod", "primeminister", "mfa-rabat",
                                                     "abay-kurchatov", "pravstat")][:12]
        for n, row in enumerate(chosen):
            for lang in ("ru", "kk") if n % 3 == 0 else ("ru",):
                archive.save_item(NewsItem(
                    agency=row["agency"], id=row["id"], lang=lang,
                    url=item_url(row["agency"], row["id"], lang),
                    title=f"[{lang}] {row['title']}", published=parse_iso(row["published"]),
                    body_html=row["body_html"] or f"<p>{lang}</p>",
                    body_text=row["body_text"] or lang,
                    image=PICTURE if n == 0 else None,
                ))  # fmt: skip
    finally:
        archive.close()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("published")
    data, config = root / "data", root / "empty.toml"
    config.write_text("", encoding="utf-8")  # defaults, whatever ./govkz-monitor.toml says
    replay = run_cli("--config", str(config), "replay", "--data", str(data))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert (data / "feeds" / "index.html").is_file()  # the first publish wrote the index
    first = {p.relative_to(data / "feeds").as_posix() for p in (data / "feeds").rglob("*.atom")}
    add_translations(data / "news.db")
    proc, port = start_serving(data, config, root / "serve.log")
    try:
        # The self links and the OPMLs name the port the server took.
        again = run_cli("--config", str(config), "feeds", "--all", "--data", str(data),
                        "--public-url", f"http://127.0.0.1:{port}/")  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
        yield Published(data, config, port, first)
    finally:
        stop(proc)


def enabled_pairs(published: Published) -> list[tuple[str, str]]:
    config = resolve(config_file=published.config)
    agencies = crawl_targets(AgencyRegistry.load(), config.agencies)
    return [(slug, lang) for slug in agencies for lang in config.crawl.langs]


def fetch(port: int, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


# --- every file ---------------------------------------------------------------------------


def test_every_feed_has_its_three_formats_and_passes_its_check(published: Published) -> None:
    problems = {}
    names = sorted(p.relative_to(published.feeds).as_posix() for p in published.feeds.rglob("*")
                   if p.suffix in (".atom", ".rss", ".json"))  # fmt: skip
    stems = {name.rsplit(".", 1)[0] for name in names}
    assert names == sorted(f"{stem}.{ext}" for stem in stems for ext in ("atom", "json", "rss"))
    for name in names:
        found = feedcheck.check_file(published.feeds / name, served_at=published.served_at(name))
        if found:
            problems[name] = found
    assert problems == {}
    assert len(stems) > 100


def test_every_json_feed_passes_the_json_feed_1_1_check(published: Published) -> None:
    checked, items = 0, 0
    for path in sorted(published.feeds.rglob("*.json")):
        name = path.relative_to(published.feeds).as_posix()
        assert check_json_feed(path.read_bytes(), published.served_at(name)) == [], name
        doc = json.loads(path.read_bytes())
        atom = feedparser.parse(path.with_suffix(".atom").read_bytes())
        assert [item["id"] for item in doc["items"]] == [e.id for e in atom.entries], name
        checked, items = checked + 1, items + len(doc["items"])
    assert checked > 100 and items > 50


def test_every_enabled_agency_had_feeds_from_the_first_publish(published: Published) -> None:
    pairs = enabled_pairs(published)
    assert len({slug for slug, _ in pairs}) > 30
    assert {f"{slug}/{lang}.atom" for slug, lang in pairs} <= published.first
    opml = etree.parse(str(published.feeds / "index.opml"), PARSER).getroot()
    listed = {o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")}
    for slug, lang in pairs:
        for ext in ("atom", "rss", "json"):
            name = f"{slug}/{lang}.{ext}"
            assert feedcheck.check_file(published.feeds / name,
                                        served_at=published.served_at(name)) == [], name
        assert published.served_at(f"{slug}/{lang}.atom") in listed


@pytest.mark.parametrize("opml", OPMLS)
def test_no_opml_subscribes_the_same_item_twice(published: Published, opml: str) -> None:
    assert feedcheck.check_opml((published.feeds / opml).read_bytes()) == []
    root = etree.parse(str(published.feeds / opml), PARSER).getroot()
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert len(urls) == len(set(urls)) > 0
    seen: dict[str, str] = {}
    for url in urls:
        assert re.fullmatch(rf"{re.escape(published.base)}feeds/[^/]+/(kk|ru|en)\.atom", url)
        assert "/feeds/all/" not in url
        for entry in feedparser.parse(published.file_of(url).read_bytes()).entries:
            assert entry.id not in seen, f"{entry.id} in {seen.get(entry.id)} and {url}"
            seen[entry.id] = url
    if opml in ("index.opml", "index.ru.opml"):
        assert len(seen) >= 12  # the items are there to be duplicated, and are not


@pytest.mark.parametrize("name", ["mod/ru", "primeminister/ru", "mfa-rabat/ru", "all/ru"])
def test_language_feeds_hold_the_translations(published: Published, name: str) -> None:
    doc = json.loads((published.feeds / f"{name}.json").read_bytes())
    assert doc["items"] and all(item["language"] == "ru" for item in doc["items"])
    if not name.startswith("all"):
        assert any(t["language"] == "en" for item in doc["items"]
                   for t in item["_govkz"]["translations"])  # fmt: skip


def test_feedparser_reads_the_picture_as_an_enclosure(published: Published) -> None:
    found = []
    for ext in ("atom", "rss"):
        parsed = feedparser.parse((published.feeds / f"all/ru.{ext}").read_bytes())
        assert parsed.bozo == 0
        found.append([(e.href, e.type) for entry in parsed.entries for e in entry.enclosures])
    url = "https://www.gov.kz/uploads/2026/5/20/%D1%84%D0%BE%D1%82%D0%BE.JPG"
    assert found == [[(url, "image/jpeg")]] * 2
    doc = json.loads((published.feeds / "all/ru.json").read_bytes())
    assert [item["image"] for item in doc["items"] if "image" in item] == [url]


# --- served -------------------------------------------------------------------------------


def test_the_feeds_directory_is_served_as_its_index(published: Published) -> None:
    status, headers, body = fetch(published.port, "/feeds/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == (published.feeds / "index.html").read_bytes()
    status, headers, _ = fetch(published.port, "/feeds")
    assert status in (301, 302) and headers["Location"] == "/feeds/"
    hrefs = re.findall(r'href="([^"]+)"', body.decode())
    assert "mod/ru.json" in hrefs and "index.ru.opml" in hrefs
    for href in ("mod/ru.json", "index.ru.opml", "all/kk.atom"):
        assert fetch(published.port, f"/feeds/{href}")[0] == 200


@pytest.mark.parametrize("name", ["mod/ru.json", "all/en.json", "all.json", "mfa.json"])
def test_json_feeds_are_served_as_json_feed(published: Published, name: str) -> None:
    status, headers, body = fetch(published.port, f"/feeds/{name}")
    assert status == 200
    assert headers["Content-Type"] == "application/feed+json; charset=utf-8"
    assert headers["ETag"]
    assert check_json_feed(body, published.served_at(name)) == []


# --- a real reader ------------------------------------------------------------------------


@pytest.mark.skipif(not NEWSBOAT, reason="newsboat is not installed "
                    "(.ci/run installs Debian's package)")
def test_newsboat_imports_index_ru_opml_and_reads_every_item(
    published: Published, tmp_path: Path
) -> None:
    status, _, body = fetch(published.port, "/feeds/index.ru.opml")
    assert status == 200
    opml, urls, cache = tmp_path / "index.ru.opml", tmp_path / "urls", tmp_path / "cache.db"
    opml.write_bytes(body)
    urls.write_text("", encoding="utf-8")
    env = {"HOME": str(tmp_path), "TERM": "dumb"}
    base = [NEWSBOAT, "-u", str(urls), "-c", str(cache), "-C", "/dev/null"]
    for extra in (["-i", str(opml)], ["-x", "reload"]):
        subprocess.run([*base, *extra], check=True, capture_output=True, timeout=120,
                       cwd=tmp_path, env=env)  # fmt: skip
    listed = [o.get("xmlUrl") for o in etree.fromstring(body, PARSER).iter("outline")
              if o.get("xmlUrl")]  # fmt: skip
    subscribed = [line.split()[0] for line in urls.read_text(encoding="utf-8").splitlines()
                  if line.strip()]  # fmt: skip
    assert sorted(subscribed) == sorted(listed)
    # The OPML's groups become newsboat tags ("Акиматы/…" for the akimats of a region).
    assert '"Министерства"' in urls.read_text(encoding="utf-8")
    with sqlite3.connect(cache) as db:
        feeds = dict(db.execute("SELECT rssurl, title FROM rss_feed").fetchall())
        rows = db.execute("SELECT feedurl, guid, title FROM rss_item").fetchall()
    assert set(feeds) == set(listed) and all(feeds.values())
    total = 0
    for url in listed:
        expected = {e.id for e in feedparser.parse(published.file_of(url).read_bytes()).entries}
        got = {guid for feed_url, guid, _ in rows if feed_url == url}
        assert got == expected, url
        total += len(expected)
    assert total == len(rows) >= 12 and all(title for _, _, title in rows)
