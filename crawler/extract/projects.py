"""Which agencies a news item belongs to: its ``projects`` field (pure).

Items of the site-wide news list (no ``projects=`` filter) name their agency only in
``projects``, whose shape public clients never showed. Three shapes are plausible and read:

- a slug string: ``"mod"``;
- a list of slugs: ``["mod", "mfa"]``;
- a list of objects naming the slug as ``slug`` or ``alias``: ``[{"id": 7, "slug": "mod"}]``
  (one such object alone is read the same way).

Anything else (a number, null, an empty list, an object with only an ``id``, a string that is
not a slug, a list mixing readable and unreadable entries) is not guessed at: project_slugs
raises LayoutChanged with the reason, which costs that element only (a Reject); a page where no
element is readable is a layout change for the caller, as for every list.
"""

from __future__ import annotations

from typing import Any

from crawler.errors import LayoutChanged
from crawler.extract.fields import json_type, short
from crawler.items import is_slug

# The keys of a project object that hold its slug, in the order they are believed.
SLUG_KEYS = ("slug", "alias")
KNOWN_SHAPES = "a slug, a list of slugs or a list of objects with slug/alias"


def project_slugs(value: Any) -> list[str]:
    """The agency slugs ``projects`` names, each once, in order; LayoutChanged when its
    shape is not one of the three known ones (module docstring)."""
    if isinstance(value, list):
        if not value:
            raise LayoutChanged("projects: an empty list")
        slugs = [_entry(entry, f"projects[{n}]") for n, entry in enumerate(value)]
        return list(dict.fromkeys(slugs))
    if isinstance(value, str | dict):
        return [_entry(value, "projects")]
    raise LayoutChanged(f"projects: {json_type(value)}, not {KNOWN_SHAPES}")


def _entry(value: Any, where: str) -> str:
    if isinstance(value, str):
        return _slug(value, where)
    if isinstance(value, dict):
        for key in SLUG_KEYS:
            if value.get(key) is not None:
                return _slug(value[key], f"{where}.{key}")
        keys = ", ".join(sorted(map(str, value))[:6]) or "none"
        raise LayoutChanged(f"{where}: an object without slug or alias (keys: {keys})")
    raise LayoutChanged(f"{where}: {json_type(value)}, not a slug or an object with slug/alias")


def _slug(value: Any, where: str) -> str:
    text = value.strip() if isinstance(value, str) else value
    if not is_slug(text):
        what = f"{json_type(value)} {short(value)}" if not isinstance(value, str) else short(value)
        raise LayoutChanged(f"{where}: not an agency slug: {what}")
    return str(text)
