"""Bodies of gov.kz news as HTML fragments and as plain text.

gov.kz's API hands out item bodies as HTML that is sometimes a whole ``<html>`` document and
whose links point at the site (``/uploads/...``). Here a body is only unwrapped and its links
made absolute; allowlist sanitizing is the feed module's job, later, on everything alike. The
parsing and the plain-text rendering are crawler.sanitize's (``parse_body``, ``text_of``), so
a body's text is exactly ``html_to_text`` of it. Nothing here raises, whatever the string.
"""

from __future__ import annotations

import html

import lxml.html

from crawler.sanitize import clean_text, parse_body, text_of


def clean_body(markup: str | None, site: str) -> tuple[str, str]:
    """``(body_html, body_text)`` of an item body: the <html>/<head>/<body> wrapper removed,
    site-relative links and image sources made absolute against ``site``."""
    body = parse_body(markup)
    if body is None:
        return "", ""
    body.make_links_absolute(site.rstrip("/") + "/", resolve_base_href=False,
                             handle_failures="ignore")
    inner = html.escape(body.text or "", quote=False) + "".join(
        lxml.html.tostring(child, encoding="unicode") for child in body
    )
    # Again after parsing: a character reference ("&#7;") decodes to what clean_text removes.
    return clean_text(inner).strip(), text_of(body)
