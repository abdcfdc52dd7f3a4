"""Field parsers and the JSON text boundary, shared by every extractor.

Each parser takes an outside value and either returns a clean field or raises LayoutChanged
whose reason is the short, specific text a Reject carries ("bad id 'abc'", "date out of
range"). The callers catch it per element, so a poisoned field costs only its own element.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from crawler.errors import LayoutChanged
from crawler.items import RAW_LIMIT
from crawler.sanitize import clean_text
from crawler.timeutil import ALMATY, localize, require_iso

SAMPLE_BYTES = 2048
# A body longer than this is not news but an accident (an embedded file, a runaway template);
# it would also make lxml, the archive and every feed that carries it slow.
MAX_BODY_BYTES = 5 * 1024 * 1024
BODY_TOO_BIG = "body over 5 MB"
# SQLite's INTEGER is signed 64-bit: a larger id could not even be stored.
MAX_ITEM_ID = 2**63 - 1
# Dates a news item can plausibly carry. Outside them a date is a data error, and near the
# ends of datetime's range (year 1, year 9999 with -12:00) converting it to Asia/Almaty or UTC
# would raise OverflowError somewhere downstream (store, feeds).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
OUT_OF_RANGE = "date out of range"
# Python refuses int() of more than 4300 digits (CVE-2020-10735); json.loads would then fail
# the whole page for one absurd number. Such a number is kept as a float (inf) instead.
_MAX_INT_DIGITS = 4000
_ID_RE = re.compile(r"[0-9]{1,19}", re.ASCII)
# The forms of created_date seen: 2026-02-27T10:15:30.123+05:00, ...Z, no offset, a plain date.
# fromisoformat alone would also take week dates and other forms gov.kz never sends.
_ISO_RE = re.compile(
    r"^(?P<year>\d{4})-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$",
    re.ASCII,
)
_JSON_TYPES = {list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null", dict: "an object"}


# --- JSON ---------------------------------------------------------------------------------------


def _parse_int(digits: str) -> int | float:
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else float(digits)


def load_json(body: bytes, what: str) -> tuple[Any, Any]:
    """``(original, cleaned)`` trees of a JSON body; LayoutChanged when it is not JSON.

    Bytes that are not valid in the body's encoding become U+FFFD instead of failing the
    page (one bad byte inside one item's body must not cost its neighbours). The cleaned tree
    (clean_tree) is what the extractors read; the original is what a Reject keeps as raw.
    """
    try:
        text = body.decode(json.detect_encoding(body), errors="replace")
        # strict=False: a raw control character inside a string (which JSON forbids) is left
        # for clean_text to remove, instead of failing the whole page.
        original = json.loads(text, parse_int=_parse_int, strict=False)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or nested beyond the stack
        head = body.lstrip()[:1]
        if isinstance(exc, RecursionError):
            kind = "nested too deep"
        else:
            kind = "an HTML page" if head == b"<" else "empty" if not head else f"invalid ({exc})"
        raise LayoutChanged(f"{what}: not JSON: {kind}", sample=body[:SAMPLE_BYTES]) from None
    return original, clean_tree(original)


def clean_tree(value: Any) -> Any:
    """A copy of a decoded JSON tree with every string, keys included, passed through
    clean_text: the one text boundary, applied before any extractor looks at a field.

    Iterative, so a tree as deep as json.loads accepts cannot exhaust the stack here. When two
    keys clean to the same text, the first one is kept."""
    if not isinstance(value, dict | list):
        return clean_text(value) if isinstance(value, str) else value
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]

    def copy(child: Any) -> Any:
        if isinstance(child, str):
            return clean_text(child)
        if isinstance(child, dict | list):
            new: Any = {} if isinstance(child, dict) else []
            stack.append((child, new))
            return new
        return child

    while stack:
        source, target = stack.pop()
        if isinstance(source, dict):
            for key, child in source.items():
                key = clean_text(key) if isinstance(key, str) else key
                if key not in target:
                    target[key] = copy(child)
        else:
            target.extend(copy(child) for child in source)
    return root


def json_type(value: Any) -> str:
    """A JSON value's kind in words, for messages: "an array", "a number", "null", ..."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def raw_json(element: Any) -> str:
    """An element as the JSON text a Reject keeps (bounded: a Reject keeps 64 KiB anyway)."""
    try:
        text = json.dumps(element, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = f"<{json_type(element)} that cannot be shown as JSON>"
    return text[: 2 * RAW_LIMIT]


def short(value: Any, limit: int = 40) -> str:
    """repr(value) cut to ``limit`` characters: enough to recognise it inside a reason."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unreadable(exc: BaseException) -> str:
    """The reason for an element that failed in a way no field parser named."""
    text = " ".join(f"unreadable: {type(exc).__name__}: {exc}".split())
    return text if len(text) <= 120 else text[:119] + "…"


# --- fields -------------------------------------------------------------------------------------


def parse_item_id(value: Any) -> int:
    """A gov.kz news id: a positive integer (a string of ASCII digits in GraphQL)."""
    if isinstance(value, str) and _ID_RE.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise LayoutChanged(f"bad id {short(value)}")
    if not 0 < number <= MAX_ITEM_ID:
        raise LayoutChanged(f"bad id {short(value)}")
    return number


def to_local(value: datetime) -> datetime:
    """An aware datetime in gov.kz local time (naive input is gov.kz local time); a date
    outside [EARLIEST, LATEST) is LayoutChanged(OUT_OF_RANGE), never an OverflowError."""
    aware = localize(value)
    if not EARLIEST <= aware < LATEST:  # comparing aware datetimes cannot overflow
        raise LayoutChanged(OUT_OF_RANGE)
    return aware.astimezone(ALMATY)


def parse_created_date(value: Any) -> datetime:
    """An aware datetime, in gov.kz local time, from any form of ``created_date`` seen.

    A value without an offset is gov.kz local time (Asia/Almaty: UTC+6 before 2024-03-01,
    UTC+5 since); one with an offset or ``Z`` keeps its instant. A wrong form or an
    impossible date is "bad created_date '…'", a year outside EARLIEST..LATEST OUT_OF_RANGE.
    """
    text = value.strip() if isinstance(value, str) else None
    match = _ISO_RE.match(text) if text is not None else None
    if match is None:
        raise LayoutChanged(f"bad created_date {short(value)}")
    if not EARLIEST.year <= int(match["year"]) < LATEST.year:
        raise LayoutChanged(OUT_OF_RANGE)
    try:
        parsed = require_iso(text)
    except ValueError:  # e.g. month 13 or offset +99:00: the right shape, an impossible date
        raise LayoutChanged(f"bad created_date {short(value)}") from None
    return to_local(parsed)


def too_big(text: str) -> bool:
    """Whether ``text`` is over MAX_BODY_BYTES in UTF-8 (without encoding short texts)."""
    if len(text) <= MAX_BODY_BYTES // 4:
        return False
    return len(text) > MAX_BODY_BYTES or len(text.encode("utf-8", "replace")) > MAX_BODY_BYTES


def absolute(site: str, reference: Any) -> str | None:
    """A link or image reference made absolute against ``site``; None when there is none or
    it cannot be joined (e.g. "http://[bad"): a broken image link never costs the item."""
    if not isinstance(reference, str) or not reference.strip():
        return None
    try:
        return urljoin(site.rstrip("/") + "/", reference.strip())
    except ValueError:
        return None
