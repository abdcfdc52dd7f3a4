"""crawler.sanitize: the allowlist, absolute links, plain text, and XML-safe characters."""

from __future__ import annotations

import lxml.html
import pytest
from lxml import etree

from crawler.sanitize import (
    SUMMARY_CHARS,
    html_to_text,
    plain_text,
    sanitize_html,
    strip_invalid_xml_chars,
    text_to_html,
    truncate,
)


def _elements(fragment: str) -> list:
    return [
        el
        for root in lxml.html.fragments_fromstring(fragment)
        if not isinstance(root, str)
        for el in root.iter()
    ]


@pytest.mark.parametrize(
    ("dirty", "gone"),
    [
        ("<p>ok</p><script>alert(1)</script>", "alert(1)"),
        ("<p>ok</p><SCRIPT type='text/javascript'>alert(1)</SCRIPT>", "alert(1)"),
        ("<style>p { color: red }</style><p>ok</p>", "color: red"),
        ("<p>ok<iframe src='https://evil.example/'>inner</iframe></p>", "evil.example"),
        ("<img src=x onerror=alert(1)><p>ok</p>", "onerror"),
        ("<p onclick='steal()'>ok</p>", "steal()"),
        ("<a href='javascript:alert(1)'>ok</a>", "javascript:"),
        ("<a href=' JaVaScRiPt:alert(1)'>ok</a>", "alert(1)"),
        ("<a href='data:text/html,<script>x</script>'>ok</a>", "data:"),
        ("<p style='background:url(javascript:x)'>ok</p>", "style"),
        ("<p class='x' id='y'>ok</p>", "class="),
        ("<!-- secret comment --><p>ok</p>", "secret comment"),
        ("<svg><script>alert(1)</script></svg><p>ok</p>", "alert(1)"),
        ("<form action='/x'><input name='q'></form><p>ok</p>", "<input"),
        ("<html><head><title>Page title</title><meta charset='utf-8'></head>"
         "<body><p>ok</p></body></html>", "Page title"),
    ],
)  # fmt: skip
def test_dangerous_markup_is_removed(dirty: str, gone: str) -> None:
    clean = sanitize_html(dirty)
    assert gone.lower() not in clean.lower()
    assert "ok" in clean
    for el in _elements(clean):
        assert el.tag not in {"script", "style", "iframe", "svg", "form", "input", "html", "head"}
        assert not any(name.startswith("on") for name in el.attrib)


@pytest.mark.parametrize(
    ("html", "attribute", "expected"),
    [
        ('<a href="/uploads/doc.pdf">d</a>', "href", "https://www.gov.kz/uploads/doc.pdf"),
        ('<img src="/uploads/2025/5/20/a.jpg">', "src", "https://www.gov.kz/uploads/2025/5/20/a.jpg"),
        ('<a href="uploads/doc.pdf">d</a>', "href", "https://www.gov.kz/uploads/doc.pdf"),
        ('<a href="//cdn.gov.kz/x.png">d</a>', "href", "https://cdn.gov.kz/x.png"),
        ('<a href="https://adilet.zan.kz/rus">d</a>', "href", "https://adilet.zan.kz/rus"),
        ('<a href="mailto:press@gov.kz">d</a>', "href", "mailto:press@gov.kz"),
        ('<a href="/uploads/файл 1.pdf">d</a>', "href",
         "https://www.gov.kz/uploads/%D1%84%D0%B0%D0%B9%D0%BB%201.pdf"),
        ('<a href="/x?a=1&amp;b=%20">d</a>', "href", "https://www.gov.kz/x?a=1&b=%20"),
    ],
)  # fmt: skip
def test_links_are_made_absolute(html: str, attribute: str, expected: str) -> None:
    (el,) = [el for el in _elements(sanitize_html(html)) if el.get(attribute)]
    assert el.get(attribute) == expected


def test_base_url_is_configurable() -> None:
    clean = sanitize_html('<a href="/news/1">n</a>', base_url="http://127.0.0.1:9999")
    (link,) = _elements(clean)
    assert link.get("href") == "http://127.0.0.1:9999/news/1"


def test_links_get_rel_noopener_and_keep_only_allowed_attributes() -> None:
    clean = sanitize_html(
        '<a href="/a" target="_blank" title="T" rel="opener">x</a>'
        '<img src="/i.png" alt="A" width="10" height="20" loading="lazy" class="c">'
    )
    link, img = _elements(clean)
    assert link.attrib == {
        "href": "https://www.gov.kz/a",
        "title": "T",
        "rel": "noopener noreferrer",
    }
    assert img.attrib == {
        "src": "https://www.gov.kz/i.png",
        "alt": "A",
        "width": "10",
        "height": "20",
    }


def test_allowed_structure_is_kept_and_unknown_tags_unwrapped() -> None:
    clean = sanitize_html(
        "<h2>Head</h2><p><b>bold</b> <em>it</em> <font color=red>plain</font></p>"
        "<ul><li>one</li></ul><table><tr><td colspan='2'>cell</td></tr></table>"
        "<figure><img src='/f.jpg'><figcaption>cap</figcaption></figure><blockquote>q</blockquote>"
    )
    tags = {el.tag for el in _elements(clean)}
    assert {"h2", "p", "b", "em", "ul", "li", "table", "td", "figure", "img", "figcaption"} <= tags
    assert "font" not in tags
    assert "plain" in clean
    assert 'colspan="2"' in clean


@pytest.mark.parametrize(
    ("dirty", "expected"),
    [
        ("<p>A & B</p>", "<p>A &amp; B</p>"),
        ("<p>A &amp; B &lt;tag&gt;</p>", "<p>A &amp; B &lt;tag&gt;</p>"),
        ("<p>unclosed <b>bold", "<p>unclosed <b>bold</b></p>"),
        ("", ""),
        ("   \n ", ""),
        ("<script>only()</script>", ""),
    ],
)
def test_output_is_well_formed(dirty: str, expected: str) -> None:
    assert sanitize_html(dirty) == expected


@pytest.mark.parametrize("bad", ["\x00", "\x0b", "\x1f", "\ufffe", "\uffff", "\ud800"])
def test_sanitized_html_has_no_invalid_xml_characters(bad: str) -> None:
    clean = sanitize_html(f"<p>a{bad}b</p>")
    assert clean == "<p>ab</p>"
    etree.Element("x").text = clean  # lxml refuses strings XML cannot hold


def test_sanitizing_is_idempotent() -> None:
    once = sanitize_html(
        '<html><body><p>a &amp; b <a href="/x y">l</a><img src="/i.jpg"></p></body></html>'
    )
    assert sanitize_html(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One line", "<p>One line</p>"),
        ("First\nSecond", "<p>First</p><p>Second</p>"),
        ("First\n\n\n  Second  \n", "<p>First</p><p>Second</p>"),
        ("A & B <script>x</script>", "<p>A &amp; B &lt;script&gt;x&lt;/script&gt;</p>"),
        ("bad\x00char\x0b", "<p>badchar</p>"),
        ("", ""),
        ("\n \n", ""),
    ],
)
def test_text_to_html(text: str, expected: str) -> None:
    assert text_to_html(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "\x00",
        "\x01",
        "\x08",
        "\x0b",
        "\x0c",
        "\x0e",
        "\x1f",
        "\ud800",
        "\udfff",
        "\ufffe",
        "\uffff",
    ],
)
def test_invalid_xml_characters_are_removed(bad: str) -> None:
    cleaned = strip_invalid_xml_chars(f"a{bad}b")
    assert cleaned == "ab"
    etree.Element("x").text = cleaned


@pytest.mark.parametrize(
    "good",
    ["\t", "\n", "\r", " ", "é", "Қазақстан", "\ue000", "\ufffd", "\U0001f600", "\x7f", "\x85"],
)
def test_valid_xml_characters_are_kept(good: str) -> None:
    assert strip_invalid_xml_chars(f"a{good}b") == f"a{good}b"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("Plain title", "Plain title"),
        ("AT&amp;T &quot;quoted&quot; &#1179;", 'AT&T "quoted" қ'),
        ("Rates < 5% & rising > 3", "Rates < 5% & rising > 3"),
        ("<script>alert(1)</script>Budget <b>2025</b>", "Budget 2025"),
        ("<p>one</p><p>two</p>three<br>four<li>five</li>", "one two three four five"),
        ("  lots \n of\t space  ", "lots of space"),
        ("<html><head><title>T</title><style>x{}</style></head><body>Body</body></html>", "Body"),
        ("nul\x00 here", "nul here"),
        ("", ""),
    ],
)
def test_html_to_text_on_one_line(html: str, expected: str) -> None:
    assert html_to_text(html, one_line=True) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>one</p><p>two</p>three<br>four<li>five</li>", "one\n\ntwo\n\nthree\nfour\n\nfive"),
        ("<p>a</p><br><br><br><br><p>b</p>", "a\n\nb"),
        ("A &amp; B &lt;3", "A & B <3"),
        ("<table><tr><td>x</td><td>y</td></tr></table>", "x y"),
        ("<svg><text>drawn</text></svg><iframe>frame</iframe>seen", "seen"),
        (None, ""),
    ],
)
def test_html_to_text_keeps_paragraphs(html: str | None, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tom & Jerry", "Tom & Jerry"),
        ("Rates < 5% & rising > 3", "Rates < 5% & rising > 3"),
        ("AT&amp;amp;T", "AT&T"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;News", "News"),
        ("&amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt;", "bold"),
        ("«Ұлттық өнім – 2025»", "«Ұлттық өнім – 2025»"),
    ],
)
def test_plain_text_is_what_a_reader_should_see(value: str, expected: str) -> None:
    result = plain_text(value)
    assert result == expected
    assert html_to_text(result) == result  # read as HTML, it shows exactly itself


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("one two three four", 12, "one two…"),
        ("word, another word", 10, "word…"),
        ("unbreakablelongword", 8, "unbreak…"),
        ("short  text\n\nhere", 300, "short text here"),
        ("alpha beta gamma delta", 12, "alpha beta…"),
        ("alpha beta gamma", 11, "alpha beta…"),  # a space right at the cut is a boundary
        ("a verylongwordthatgoeson", 12, "a verylongw…"),  # not just "a…"
        ("x" * 40, 10, "x" * 9 + "…"),
        ("", 300, ""),
        ("two words", 1, "…"),
        ("two words", 0, ""),
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    result = truncate(text, limit)
    assert result == expected
    assert len(result) <= limit


def test_truncate_default_is_the_summary_length() -> None:
    result = truncate(" ".join(["слово"] * 100))
    assert len(result) <= SUMMARY_CHARS == 300 and result.endswith("слово…")
