"""An offline stand-in for the W3C Feed Validation Service, used by the tests.

The service itself cannot be reached from here, so this checks what it checks for the feeds we
publish: Atom against the RFC 4287 RELAX NG grammar (tests/schemas/atom.rng) plus the RFC's
Schematron rules, RSS 2.0 and OPML 2.0 structure, and the validator's usual errors and
warnings (self link matching the served location, absolute ids and links, RFC 3339 / RFC 822
dates, unique ids, HTML content without scripts or relative links, no markup in plain-text
fields). Each check returns a list of problems; an empty list means the document passes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import lxml.html
from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
XML_NS = "http://www.w3.org/XML/1998/namespace"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
SCHEMA = Path(__file__).parent / "schemas" / "atom.rng"

# The validator's "full URI" test (rfc2396_full), widened to IRIs (non-ASCII allowed).
FULL_IRI = re.compile(
    r"^[a-zA-Z][0-9a-zA-Z+\-.]*:(//)?[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#\u00a0-\U0010ffff]+$"
)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
# The validator's RFC 822 pattern (4-digit years only: it warns about 2-digit ones).
RFC822 = re.compile(
    r"^((Mon|Tue|Wed|Thu|Fri|Sat|Sun), *)?\d\d? +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" +\d{4} +\d\d:\d\d(:\d\d)? +([+-]\d{4}|UT|GMT|[ECMP][SD]T)$"
)
LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$", re.I)
HTML_END_TAG = re.compile(r"</[A-Za-z][A-Za-z0-9]*\s*>")
DANGEROUS_TAGS = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form",
    "input", "button", "textarea", "select", "meta", "link", "base", "svg", "math",
}  # fmt: skip
RSS_CHANNEL = {
    "title", "link", "description", "language", "copyright", "managingEditor", "webMaster",
    "pubDate", "lastBuildDate", "category", "generator", "docs", "cloud", "ttl", "image",
    "rating", "textInput", "skipHours", "skipDays", "item",
}  # fmt: skip
RSS_ITEM = {
    "title", "link", "description", "author", "category", "comments", "enclosure", "guid",
    "pubDate", "source",
}  # fmt: skip
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=False)


@cache
def _atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def parse_xml(data: bytes) -> tuple[etree._Element | None, list[str]]:
    """Strict XML 1.0 parsing: a malformed document or a forbidden character is a problem."""
    problems = []
    if not data.startswith(b"<?xml"):
        problems.append("no XML declaration")
    elif b"encoding='UTF-8'" not in data[:80] and b'encoding="UTF-8"' not in data[:80]:
        problems.append("XML declaration does not say UTF-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [*problems, f"not UTF-8: {exc}"]
    try:
        return etree.fromstring(data, PARSER), problems
    except etree.XMLSyntaxError as exc:
        return None, [*problems, f"not well-formed XML: {exc}"]


def check_html(value: str, where: str) -> list[str]:
    """Escaped HTML content: nothing that runs, nothing relative (ContainsRelRef)."""
    if not value.strip():
        return []
    problems = []
    for root in lxml.html.fragments_fromstring(value):
        if isinstance(root, str):
            continue
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            if el.tag.lower() in DANGEROUS_TAGS:
                problems.append(f"{where}: dangerous HTML element <{el.tag}>")
            for name, attr in el.attrib.items():
                if name.lower().startswith("on") or name.lower() == "style":
                    problems.append(f"{where}: dangerous HTML attribute {name}= on <{el.tag}>")
                if name.lower() in ("href", "src"):
                    url = attr.strip()
                    if re.match(r"(?i)^(javascript|vbscript|data):", url):
                        problems.append(f"{where}: script URL {url!r}")
                    elif not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
                        problems.append(f"{where}: relative URL {url!r} in HTML")
    return problems


def check_plain(value: str | None, where: str, *, required: bool = False) -> list[str]:
    if not (value or "").strip():
        return [f"{where}: blank"] if required else []
    if HTML_END_TAG.search(value or ""):
        return [f"{where}: contains HTML markup: {value!r}"]
    return []


def _iri(value: str | None, where: str) -> list[str]:
    if not value or not FULL_IRI.match(value.strip()):
        return [f"{where}: not an absolute IRI: {value!r}"]
    return []


def _rfc3339(value: str | None, where: str) -> list[str]:
    if not value or not RFC3339.match(value.strip()):
        return [f"{where}: not an RFC 3339 date-time: {value!r}"]
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return [f"{where}: impossible date {value!r}"]
    return []


def _rfc822(value: str | None, where: str) -> list[str]:
    text = (value or "").strip()
    if not RFC822.match(text):
        return [f"{where}: not an RFC 822 date: {value!r}"]
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return [f"{where}: email.utils cannot parse {value!r}"]
    if parsed.tzinfo is None:
        return [f"{where}: date without a time zone: {value!r}"]
    if parsed.year < 1970 or parsed > datetime.now(parsed.tzinfo) + timedelta(days=1):
        return [f"{where}: implausible date {value!r}"]
    return []


def _self_link(href: str | None, type_: str | None, served_at: str | None, kind: str) -> list[str]:
    if href is None:
        return ['missing atom:link rel="self"']
    problems = _iri(href, "self link")
    if served_at is not None and href != served_at:
        problems.append(f"self link {href!r} does not match document location {served_at!r}")
    if type_ != kind:
        problems.append(f"self link type {type_!r}, expected {kind!r}")
    return problems


# --- Atom -------------------------------------------------------------------------------------


def _a(name: str) -> str:
    return f"{{{ATOM}}}{name}"


def _alternates(parent: etree._Element, where: str) -> list[str]:
    """RFC 4287: at most one rel="alternate" link per (type, hreflang)."""
    seen, problems = set(), []
    for link in parent.findall(_a("link")):
        if link.get("rel", "alternate") == "alternate":
            combo = (link.get("type"), link.get("hreflang"))
            if combo in seen:
                problems.append(f"{where}: two alternate links with type/hreflang {combo}")
            seen.add(combo)
        problems += _iri(link.get("href"), f"{where} link")
    return problems


def _text_construct(el: etree._Element | None, where: str, *, required: bool) -> list[str]:
    if el is None:
        return [f"{where}: missing"] if required else []
    if el.get("type") == "html":
        return check_html(el.text or "", where) + (
            [f"{where}: blank"] if required and not (el.text or "").strip() else []
        )
    if el.get("type") == "xhtml":
        return []
    return check_plain(el.text, where, required=required)


def check_atom(data: bytes, served_at: str | None = None) -> list[str]:
    root, problems = parse_xml(data)
    if root is None:
        return problems
    if root.tag != _a("feed"):
        return [*problems, f"root element is {root.tag}, not atom:feed"]
    schema = _atom_schema()
    if not schema.validate(root):
        problems += [f"RELAX NG: {e.message} (line {e.line})" for e in schema.error_log]
    problems += _iri(root.findtext(_a("id")), "feed id")
    problems += _rfc3339(root.findtext(_a("updated")), "feed updated")
    problems += _text_construct(root.find(_a("title")), "feed title", required=True)
    selfs = [ln for ln in root.findall(_a("link")) if ln.get("rel") == "self"]
    if len(selfs) > 1:
        problems.append("more than one self link")
    first = selfs[0] if selfs else None
    problems += _self_link(
        first.get("href") if first is not None else None,
        first.get("type") if first is not None else None,
        served_at,
        "application/atom+xml",
    )
    problems += _alternates(root, "feed")
    if xml_lang := root.get(f"{{{XML_NS}}}lang"):
        if not LANGUAGE.match(xml_lang):
            problems.append(f"invalid xml:lang {xml_lang!r}")
    feed_author = root.find(_a("author")) is not None
    ids: set[str] = set()
    for n, entry in enumerate(root.findall(_a("entry")), 1):
        where = f"entry {n}"
        entry_id = entry.findtext(_a("id"))
        problems += _iri(entry_id, f"{where} id")
        if entry_id in ids:
            problems.append(f"{where}: duplicate id {entry_id!r}")
        ids.add(entry_id or "")
        problems += _text_construct(entry.find(_a("title")), f"{where} title", required=True)
        problems += _rfc3339(entry.findtext(_a("updated")), f"{where} updated")
        if entry.find(_a("published")) is not None:
            problems += _rfc3339(entry.findtext(_a("published")), f"{where} published")
        links = [
            ln for ln in entry.findall(_a("link")) if ln.get("rel", "alternate") == "alternate"
        ]
        content = entry.find(_a("content"))
        if not links and content is None:
            problems.append(f"{where}: neither an alternate link nor content")
        if not feed_author and entry.find(_a("author")) is None:
            problems.append(f"{where}: no author, and the feed has none")
        problems += _alternates(entry, where)
        problems += _text_construct(content, f"{where} content", required=False)
        problems += _text_construct(entry.find(_a("summary")), f"{where} summary", required=False)
        for cat in entry.findall(_a("category")):
            if not (cat.get("term") or "").strip():
                problems.append(f"{where}: blank category term")
    return problems


# --- RSS 2.0 ----------------------------------------------------------------------------------


def check_rss(data: bytes, served_at: str | None = None) -> list[str]:
    root, problems = parse_xml(data)
    if root is None:
        return problems
    if root.tag != "rss" or root.get("version") != "2.0":
        return [*problems, f"root is <{root.tag} version={root.get('version')!r}>, not RSS 2.0"]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [*problems, f"{len(channels)} channel elements"]
    channel = channels[0]
    problems += [
        f"channel: unknown element <{el.tag}>"
        for el in channel
        if isinstance(el.tag, str) and "}" not in el.tag and el.tag not in RSS_CHANNEL
    ]
    problems += check_plain(channel.findtext("title"), "channel title", required=True)
    problems += _iri(channel.findtext("link"), "channel link")
    if channel.find("description") is None:
        problems.append("channel: missing description")
    if (lang := channel.findtext("language")) is not None and not LANGUAGE.match(lang):
        problems.append(f"channel: invalid language {lang!r}")
    for name in ("lastBuildDate", "pubDate"):
        if channel.find(name) is not None:
            problems += _rfc822(channel.findtext(name), f"channel {name}")
    selfs = [ln for ln in channel.findall(f"{{{ATOM}}}link") if ln.get("rel") == "self"]
    first = selfs[0] if selfs else None
    problems += _self_link(
        first.get("href") if first is not None else None,
        first.get("type") if first is not None else None,
        served_at,
        "application/rss+xml",
    )
    guids: set[str] = set()
    for n, item in enumerate(channel.findall("item"), 1):
        where = f"item {n}"
        problems += [
            f"{where}: unknown element <{el.tag}>"
            for el in item
            if isinstance(el.tag, str) and "}" not in el.tag and el.tag not in RSS_ITEM
        ]
        if item.find("title") is None and item.find("description") is None:
            problems.append(f"{where}: neither title nor description")
        problems += check_plain(item.findtext("title"), f"{where} title")
        if item.find("link") is not None:
            problems += _iri(item.findtext("link"), f"{where} link")
        guid = item.find("guid")
        if guid is None:
            problems.append(f"{where}: missing guid")
        else:
            permalink = guid.get("isPermaLink", "true")
            if permalink not in ("true", "false"):
                problems.append(f"{where}: isPermaLink={permalink!r}")
            if permalink == "true":
                problems += _iri(guid.text, f"{where} guid")
            if (guid.text or "") in guids:
                problems.append(f"{where}: duplicate guid {guid.text!r}")
            guids.add(guid.text or "")
        if item.find("pubDate") is not None:
            problems += _rfc822(item.findtext("pubDate"), f"{where} pubDate")
        problems += check_html(item.findtext("description") or "", f"{where} description")
        encoded = item.find(f"{{{CONTENT}}}encoded")
        if encoded is not None:
            if item.find("description") is None:
                problems.append(f"{where}: content:encoded without a description before it")
            problems += check_html(encoded.text or "", f"{where} content:encoded")
        for cat in item.findall("category"):
            problems += check_plain(cat.text, f"{where} category", required=True)
        enclosures = item.findall("enclosure")
        if len(enclosures) > 1:
            problems.append(f"{where}: more than one enclosure")
        for enclosure in enclosures:
            problems += _iri(enclosure.get("url"), f"{where} enclosure url")
            if not (enclosure.get("length") or "").isdigit():
                problems.append(f"{where}: enclosure length {enclosure.get('length')!r}")
            if not MEDIA_TYPE.match(enclosure.get("type") or ""):
                problems.append(f"{where}: enclosure type {enclosure.get('type')!r}")
    return problems


# --- OPML -------------------------------------------------------------------------------------


def check_opml(data: bytes) -> list[str]:
    root, problems = parse_xml(data)
    if root is None:
        return problems
    if root.tag != "opml" or root.get("version") not in ("1.0", "1.1", "2.0"):
        return [*problems, f"root is <{root.tag} version={root.get('version')!r}>, not OPML"]
    if root.find("head") is None:
        problems.append("missing head")
    body = root.find("body")
    if body is None:
        return [*problems, "missing body"]
    outlines = list(body.iter("outline"))
    if not outlines:
        problems.append("body has no outline")
    urls: set[str] = set()
    for n, outline in enumerate(outlines, 1):
        where = f"outline {n}"
        if not (outline.get("text") or "").strip():
            problems.append(f"{where}: missing text")
        if outline.get("xmlUrl") is None and outline.get("type") is None:
            continue  # a group of feeds (or a note): OPML 2.0 needs only its text
        if (outline.get("type") or "").lower() != "rss":
            problems.append(f"{where}: type is {outline.get('type')!r}, expected 'rss'")
        if not outline.get("title"):
            problems.append(f"{where}: missing title")
        url = outline.get("xmlUrl")
        problems += _iri(url, f"{where} xmlUrl")
        if url in urls:
            problems.append(f"{where}: feed listed twice: {url}")
        urls.add(url or "")
        if outline.get("htmlUrl") is not None:
            problems += _iri(outline.get("htmlUrl"), f"{where} htmlUrl")
        if (lang := outline.get("language")) is not None and not LANGUAGE.match(lang):
            problems.append(f"{where}: invalid language {lang!r}")
    return problems


# --- the feeds directory's index.html -----------------------------------------------------

PAGE_FORBIDDEN = {"script", "iframe", "frame", "object", "embed", "applet", "form", "base"}


def check_index_html(path: Path) -> list[str]:
    """The directory page: UTF-8 HTML with a title, nothing that runs, and every link either
    absolute or naming a file that exists beside it."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not UTF-8: {exc}"]
    if not text.lstrip().lower().startswith("<!doctype html>"):
        return ["no <!DOCTYPE html>"]
    root = lxml.html.document_fromstring(text)
    problems = [] if (root.findtext(".//title") or "").strip() else ["no <title>"]
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag.lower() in PAGE_FORBIDDEN:
            problems.append(f"forbidden element <{el.tag}>")
        for name, value in el.attrib.items():
            if name.lower().startswith("on"):
                problems.append(f"event handler {name}= on <{el.tag}>")
            if name.lower() in ("href", "src"):
                url = value.strip()
                if re.match(r"(?i)^(javascript|vbscript|data):", url):
                    problems.append(f"script URL {url!r}")
                elif not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
                    target = Path(path).parent / unquote(url.split("#")[0].split("?")[0])
                    if not target.is_file():
                        problems.append(f"link to a missing file {url!r}")
    return problems


def check_file(path: Path, served_at: str | None = None) -> list[str]:
    """Check a written file by its extension (.atom, .rss, .json, .opml, .html)."""
    from jsonfeed_check import check_json_feed

    data = Path(path).read_bytes()
    checks = {".atom": check_atom, ".rss": check_rss, ".json": check_json_feed}
    if path.name in (".index.key", ".feeds.state"):  # the publisher's bookkeeping: no feed
        return []
    if path.suffix == ".gz":  # the publisher's gzip copy: exactly the file beside it
        import gzip

        original = path.with_suffix("")
        if not original.is_file() or gzip.decompress(data) != original.read_bytes():
            return [f"{path}: not a gzip copy of {original.name}"]
        return []
    if path.suffix == ".opml":
        return check_opml(data)
    if path.suffix == ".html":
        return check_index_html(path)
    if path.suffix not in checks:
        return [f"{path}: unknown feed type"]
    return checks[path.suffix](data, served_at)
