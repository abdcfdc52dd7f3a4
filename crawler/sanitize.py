"""Make gov.kz text and HTML safe to publish in a feed.

gov.kz bodies are HTML of unknown quality: sometimes a whole `<html>` document, with
site-relative `/uploads/...` links. Everything goes through nh3 (the ammonia HTML parser and
allowlist sanitizer); no regular expression ever looks at HTML here. The only regular
expression is the XML 1.0 character class, which is about characters, not markup.
"""

from __future__ import annotations

import copy
import html
import re
import unicodedata
from urllib.parse import quote, urljoin

import lxml.etree
import lxml.html
import nh3

GOVKZ_BASE = "https://www.gov.kz"

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "a", "b", "strong", "i", "em", "u", "s", "sub", "sup", "small",
        "ul", "ol", "li", "blockquote", "pre", "code",
        "h1", "h2", "h3", "h4", "h5", "h6",
        "img", "figure", "figcaption",
        "table", "caption", "thead", "tbody", "tfoot", "tr", "td", "th",
        "span", "div",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Dropped together with everything inside them (a document's <head> lands here too).
DROP_WITH_CONTENT = frozenset(
    {"script", "style", "title", "noscript", "template", "iframe", "object", "svg", "math"}
)
# A summary's length (API, RSS and snapshot items, feed entries without one): truncate's default.
SUMMARY_CHARS = 300
_URL_ATTRIBUTES = {("a", "href"), ("img", "src")}
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"

# Characters outside the XML 1.0 `Char` production: C0 controls but tab/LF/CR, lone
# surrogates, U+FFFE and U+FFFF. lxml refuses them, and a feed containing one is not XML.
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def strip_invalid_xml_chars(s: str) -> str:
    """Remove every character XML 1.0 does not allow."""
    return _INVALID_XML.sub("", s)


# --- the text boundary ----------------------------------------------------------------------
# Every string from outside (API JSON, GraphQL, the official RSS, snapshots, agency names)
# passes clean_text before it becomes a field, so the archive, the feeds, the terminal and
# Datasette never see a control character, a lone surrogate or a bidi override.

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls but tab and newline, DEL, C1 controls, and what XML 1.0 forbids (U+FFFE/U+FFFF).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
# Bidi embedding/override (U+202A-U+202E) and isolate (U+2066-U+2069) controls: in a title or a
# name they can reverse what a terminal or a reader shows (a "Trojan Source" spoof).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def clean_text(value: str) -> str:
    """Outside text made safe to store and publish: lone surrogates become U+FFFD, line ends
    become "\\n", C0/C1 controls other than tab and newline and XML-forbidden characters
    are removed, then Unicode NFC. Idempotent."""
    if not value:
        return ""
    text = _SURROGATE.sub("\ufffd", value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    return unicodedata.normalize("NFC", text)


def clean_line(value: str) -> str:
    """clean_text for a title or a name: bidi controls removed, white space folded to one line."""
    return " ".join(_BIDI.sub("", clean_text(value)).split())


def sanitize_html(html_text: str, *, base_url: str = GOVKZ_BASE) -> str:
    """An allowlisted HTML fragment: safe tags and attributes only, <script>/<style> dropped
    with their content, a whole-document wrapper unwrapped, links and images made absolute
    against `base_url`, only http/https/mailto links, rel="noopener noreferrer" on links."""
    if not html_text or not html_text.strip():
        return ""

    def absolute(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in _URL_ATTRIBUTES:
            # Percent-encode spaces and non-ASCII (gov.kz upload names are often Cyrillic),
            # keeping reserved characters and existing escapes as they are.
            return quote(urljoin(base_url, value.strip()), safe=_URL_SAFE)
        return value

    cleaned = nh3.clean(
        strip_invalid_xml_chars(html_text),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=absolute,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    # nh3 decodes character references, so "&#7;" comes out as a raw control character.
    return clean_text(cleaned).strip()


def text_to_html(text: str) -> str:
    """Plain text as HTML: one escaped <p> per non-empty line."""
    lines = (line.strip() for line in strip_invalid_xml_chars(text or "").splitlines())
    return "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines if line)


# --- the readable text of HTML ---------------------------------------------------------------
# One rendering for bodies, summaries, titles and feed fields alike: lxml parses (fragment or
# whole document), what a reader does not see is dropped, blocks become paragraph breaks.

# Elements whose text is not part of what a reader sees.
_INVISIBLE = tuple(sorted(DROP_WITH_CONTENT | {"head"}))
# Elements that start a new paragraph in the plain-text rendering.
_BLOCKS = frozenset(
    "address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tr ul".split()
)
_CELLS = frozenset(("td", "th"))
# Private-use characters mark breaks while the source's own white space is folded.
_PARA = "\ue000"
_LINE = "\ue001"
_PARSER = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, huge_tree=True)


def parse_body(markup: str | None) -> lxml.html.HtmlElement | None:
    """The <body> element of ``markup``, whether it is a fragment or a whole document; None
    when there is nothing to parse. Never raises: lxml refuses control characters and lone
    surrogates (so the markup passes clean_text first) and, without ``huge_tree``, silently
    cuts text nodes over 10 MB; markup it cannot parse at all is simply no body."""
    markup = clean_text(markup or "")
    if not markup.strip():
        return None
    try:
        # Bytes with a fixed encoding: a str carrying an XML declaration is refused by lxml,
        # and a <meta charset> inside a body must not re-decode it.
        document = lxml.html.document_fromstring(markup.encode("utf-8"), parser=_PARSER)
    except (lxml.etree.LxmlError, ValueError):  # ParserError ("Document is empty"), ...
        return None
    if "&#" in markup:
        _scrub(document)
    return document.find("body")


def _scrub(document: lxml.html.HtmlElement) -> None:
    """clean_text on every text and attribute of a parsed document: a character reference
    ("&#7;") decodes to a control character, which lxml then refuses in any later assignment
    (and which must not reach a field)."""
    for el in document.iter():
        if el.text:
            el.text = clean_text(el.text)
        if el.tail:
            el.tail = clean_text(el.tail)
        for name, value in el.attrib.items():
            el.attrib[name] = clean_text(value)


def text_of(element: lxml.html.HtmlElement) -> str:
    """What a reader sees of ``element``: paragraphs joined by "\\n\\n", <br> as "\\n",
    runs of white space folded to one space, invisible elements (<script>, <head>, ...) left out.
    """
    root = copy.deepcopy(element)
    for hidden in list(root.iter(*_INVISIBLE)):
        hidden.drop_tree()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        if tag == "br":
            el.tail = _LINE + (el.tail or "")
        elif tag in _BLOCKS:
            el.text = _PARA + (el.text or "")
            el.tail = _PARA + (el.tail or "")
        elif tag in _CELLS:
            el.tail = " " + (el.tail or "")
    paragraphs = []
    for chunk in root.text_content().replace("\xa0", " ").split(_PARA):
        lines = [" ".join(line.split()) for line in chunk.split(_LINE)]
        text = "\n".join(lines).strip()
        if text:
            paragraphs.append(text)
    # Repeated <br> become at most one blank line, like paragraph breaks.
    return clean_text(re.sub(r"\n{3,}", "\n\n", "\n\n".join(paragraphs)))


def html_to_text(markup: str | None, *, one_line: bool = False) -> str:
    """The readable text of HTML (a fragment, a whole document, or plain text that may hold
    entities or stray tags): tags removed, invisible elements dropped with their content,
    entities decoded. Paragraphs are separated by a blank line and <br> is a line break; with
    ``one_line`` all white space is folded to single spaces (for a title or a summary)."""
    body = parse_body(markup)
    text = text_of(body) if body is not None else ""
    return " ".join(text.split()) if one_line else text


def plain_text(value: str) -> str:
    """Text for a plain-text feed field (title, summary, category): what a reader should see.

    Decoded and de-tagged until stable (at most a few passes): a field that still looks like
    markup after one pass (double-escaped CMS output such as "&amp;lt;b&amp;gt;") would be
    shown as HTML by the many readers that treat RSS text as HTML. The result parses as HTML
    to exactly itself."""
    # What XML cannot carry goes first: a lone surrogate here is dropped, not shown as U+FFFD.
    text = html_to_text(strip_invalid_xml_chars(value), one_line=True)
    for _ in range(3):
        again = html_to_text(text, one_line=True)
        if again == text:
            break
        text = again
    return text


def truncate(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` on one line (white space folded) and at most ``limit`` characters long.

    The one truncation rule (summaries, titles from bodies, error lines): a text that is too
    long is cut at the last space that leaves room for the ellipsis, trailing punctuation is
    dropped and "…" appended. A cut that would keep less than half of ``limit`` (one enormous
    word) cuts inside the word instead."""
    folded = " ".join(text.split())
    if len(folded) <= limit:
        return folded
    if limit < 2:
        return "…"[:limit]
    room = limit - 1  # characters left for the text beside the ellipsis
    cut = folded.rfind(" ", 0, room + 1)
    if cut < limit // 2:
        cut = room
    return folded[:cut].rstrip(" ,.;:-\u2013\u2014") + "…"
