"""Make gov.kz text and HTML safe to publish in a feed.

gov.kz bodies are HTML of unknown quality: sometimes a whole `<html>` document, with
site-relative `/uploads/...` links. Everything goes through nh3 (the ammonia HTML parser and
allowlist sanitizer); no regular expression ever looks at HTML here. The only regular
expression is the XML 1.0 character class, which is about characters, not markup.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import quote, urljoin

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


def html_to_text(html_text: str) -> str:
    """The readable text of an HTML fragment (or of plain text that may hold entities or
    stray tags), on one line: tags removed, <script>/<style> dropped with their content,
    entities decoded, white space folded."""
    if not html_text:
        return ""
    # Keep only the block tags, so their boundaries can become spaces; nh3 escapes the rest.
    blocks = nh3.clean(
        strip_invalid_xml_chars(html_text),
        tags={"p", "br", "div", "li"},
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={},
        link_rel=None,
    )
    # Again after nh3, which decodes "&#7;" into a character lxml refuses.
    root = lxml.html.fragment_fromstring(clean_text(blocks), create_parent="div")
    for block in root.iter("p", "br", "div", "li"):
        # A space on both sides of every block, so "<p>a</p><p>b</p>" reads "a b".
        block.text = " " + (block.text or "")
        block.tail = " " + (block.tail or "")
    return " ".join(root.text_content().split())


def plain_text(value: str) -> str:
    """Text for a plain-text feed field (title, summary, category): what a reader should see.

    Decoded and de-tagged until stable (at most a few passes): a field that still looks like
    markup after one pass (double-escaped CMS output such as "&amp;lt;b&amp;gt;") would be
    shown as HTML by the many readers that treat RSS text as HTML. The result parses as HTML
    to exactly itself."""
    text = html_to_text(value)
    for _ in range(3):
        again = html_to_text(text)
        if again == text:
            break
        text = again
    return text


def truncate(text: str, limit: int = 300) -> str:
    """Cut plain text to at most `limit` characters at a word boundary, adding an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut.rstrip(" ,.;:-–—") + "…"
