"""The feeds directory's index.html: every feed, grouped like the OPML, for people.

Served for /feeds/ by the daemon and readable from a static copy of the directory too, so every
link is relative to the directory. Plain HTML: no script, every name escaped, a Content
Security Policy that allows nothing but the inline style.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from urllib.parse import quote

from crawler.agencies import AgencyRegistry
from crawler.feed_catalog import Section
from crawler.items import LANGS

FORMAT_LABELS = (("atom", "Atom"), ("rss", "RSS"), ("json", "JSON"))
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
TITLE = "gov.kz press news feeds"
STYLE = """body{font:16px/1.45 system-ui,sans-serif;margin:1rem auto;max-width:60rem;padding:0 1rem}
h2{margin-top:1.6rem;border-bottom:1px solid #ccc}h3{margin:1rem 0 .3rem;font-size:1.05rem}
ul{list-style:none;padding:0}li{margin:.35rem 0}.name{display:block;font-weight:600}
.lang{display:inline-block;margin-right:1rem;white-space:nowrap}a{color:#0645ad}"""


def _href(path: str) -> str:
    return escape(quote(path), quote=True)


def _links(rel: str, lang: str, title: str) -> str:
    links = " ".join(
        f'<a href="{_href(f"{rel}.{ext}")}" hreflang="{escape(lang)}" '
        f'title="{escape(title)} ({label})">{label}</a>'
        for ext, label in FORMAT_LABELS
    )
    return f'<span class="lang" lang="{escape(lang)}">{escape(lang)}: {links}</span>'


def _agency(slug: str, langs: Sequence[str], registry: AgencyRegistry) -> str:
    name = registry.name(slug, "en")
    links = " ".join(_links(f"{slug}/{lang}", lang, registry.name(slug, lang)) for lang in langs)
    return (f'<li id="{escape(slug, quote=True)}"><span class="name">{escape(name)}</span>'
            f"{links}</li>")


def _section(section: Section, by_agency: Mapping[str, Sequence[str]],
             registry: AgencyRegistry, level: int) -> list[str]:
    lines = [f"<h{level}>{escape(section.title('en'))}</h{level}>"]
    if section.agencies:
        lines.append("<ul>")
        lines += [_agency(slug, by_agency.get(slug, ()), registry) for slug in section.agencies]
        lines.append("</ul>")
    for sub in section.sections:
        lines += _section(sub, by_agency, registry, level + 1)
    return lines


def render_index(
    sections: Iterable[Section],
    by_agency: Mapping[str, Sequence[str]],
    registry: AgencyRegistry,
) -> bytes:
    """The page: the OPML lists, the every-agency feeds per language, then each group's
    agencies with the Atom, RSS and JSON Feed links of each of their languages."""
    opml = " · ".join(
        ['<a href="index.opml" type="text/x-opml">all languages</a>']
        + [f'<a href="index.{lang}.opml" type="text/x-opml" hreflang="{lang}">'
           f"{escape(LANGUAGE_NAMES[lang])}</a>" for lang in LANGS]
    )  # fmt: skip
    every = "".join(
        f"<li>{escape(LANGUAGE_NAMES[lang])} {_links(f'all/{lang}', lang, 'gov.kz')}</li>"
        for lang in LANGS
    )
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>{TITLE}</title>",
        '<link rel="alternate" type="text/x-opml" href="index.opml" title="OPML">',
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{TITLE}</h1>",
        "<p>One feed per agency and language, each as Atom, RSS and JSON Feed; a news item is "
        "in exactly one of them. Subscribe to a whole list in a feed reader (OPML): "
        f"{opml}.</p>",
        "<h2>All agencies</h2>",
        f"<ul>{every}</ul>",
    ]
    for section in sections:
        lines += _section(section, by_agency, registry, 2)
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode("utf-8")
