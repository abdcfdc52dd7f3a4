"""Bodies of gov.kz news as HTML fragments and as plain text.

gov.kz's API hands out item bodies as HTML that is sometimes a whole ``<html>`` document and
whose links point at the site (``/uploads/...``). Here a body is only unwrapped and its links
made absolute; allowlist sanitizing is the feed module's job, later, on everything alike.

Nothing here raises, whatever the string: lxml refuses control characters and lone surrogates
(so the markup passes clean_text first) and, without ``huge_tree``, silently cuts text nodes
over 10 MB; markup it cannot parse at all is simply no body.
"""

from __future__ import annotations

import copy
import html
import re

import lxml.etree
import lxml.html

from crawler.sanitize import clean_text

# Elements whose text is not part of what a reader sees.
_INVISIBLE = ("script", "style", "noscript", "template", "head", "title")
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


def _body_of(markup: str) -> lxml.html.HtmlElement | None:
    """The <body> element of ``markup``, whether it is a fragment or a whole document."""
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


def clean_body(markup: str | None, site: str) -> tuple[str, str]:
    """``(body_html, body_text)`` of an item body: the <html>/<head>/<body> wrapper removed,
    site-relative links and image sources made absolute against ``site``."""
    body = _body_of(markup or "")
    if body is None:
        return "", ""
    body.make_links_absolute(site.rstrip("/") + "/", resolve_base_href=False,
                             handle_failures="ignore")
    inner = html.escape(body.text or "", quote=False) + "".join(
        lxml.html.tostring(child, encoding="unicode") for child in body
    )
    # Again after parsing: a character reference ("&#7;") decodes to what clean_text removes.
    return clean_text(inner).strip(), text_of(body)


def html_to_text(markup: str | None) -> str:
    """Plain text of an HTML fragment (or of plain text): paragraphs separated by a blank line."""
    body = _body_of(markup or "")
    return text_of(body) if body is not None else ""


def text_of(element: lxml.html.HtmlElement) -> str:
    """What a reader sees of ``element``: paragraphs joined by "\\n\\n", <br> as "\\n",
    runs of white space folded to one space."""
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


def summarize(text: str, limit: int = 300) -> str:
    """The first ``limit`` characters of ``text`` on one line, cut at a word boundary."""
    folded = " ".join(text.split())
    if len(folded) <= limit:
        return folded
    cut = folded.rfind(" ", 0, limit + 1)
    if cut < limit // 2:  # one enormous word: cut inside it rather than keep almost nothing
        cut = limit
    return folded[:cut].rstrip(" ,.;:-\u2013\u2014") + "\u2026"
