"""Reading the reader's pages back (scheduler/pages.py) as the tests look at them."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"meta", "link", "br", "img", "input", "hr"}


@dataclass
class Dom(HTMLParser):
    """The parts of a page the tests look at; also checks that every element is closed."""

    tags: list[str] = field(default_factory=list)
    links: list[dict[str, str | None]] = field(default_factory=list)  # <link> elements
    anchors: list[str] = field(default_factory=list)
    text: dict[str, list[str]] = field(default_factory=dict)  # tag -> its text pieces
    stack: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "link":
            self.links.append(a)
        if tag == "a":
            self.anchors.append(a.get("href") or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for tag in self.stack:
            self.text.setdefault(tag, []).append(data)

    def all_text(self, tag: str) -> str:
        return "".join(self.text.get(tag, []))


def parse(body: bytes) -> Dom:
    assert body.startswith(b"<!DOCTYPE html>")
    dom = Dom()
    dom.feed(body.decode("utf-8"))
    dom.close()
    assert dom.stack == []
    return dom
