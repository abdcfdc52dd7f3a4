"""A word diff of two texts, for the edit history of an item (pure: text in, segments out).

The texts are cut into tokens that are either a run of white space or a run of anything else, so
that the tokens joined give the text back exactly; difflib matches the token lists. Each segment
of the result is kept, added or removed text, and the old text is the kept and removed segments
in order, the new one the kept and added ones: nothing is lost, white space included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum

_TOKEN = re.compile(r"\s+|\S+")
# Past this many tokens on a side, difflib's quadratic worst case could stall the server's one
# thread on a pathological pair; such a pair is shown as one replacement instead.
MAX_TOKENS = 20_000


class Op(StrEnum):
    EQUAL = "equal"
    INSERT = "insert"
    DELETE = "delete"


@dataclass(frozen=True)
class Segment:
    op: Op
    text: str


def tokens(text: str) -> list[str]:
    """`text` as alternating white-space and word tokens; "".join(tokens(t)) == t."""
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[Segment]:
    """The segments that turn `old` into `new`, adjacent segments of one kind merged, none
    empty; a replacement is its removed text first, then the added text."""
    a, b = tokens(old), tokens(new)
    if len(a) > MAX_TOKENS or len(b) > MAX_TOKENS:
        if old == new:
            return _merge([(Op.EQUAL, old)])
        return _merge([(Op.DELETE, old), (Op.INSERT, new)])
    # autojunk off: it would treat frequent words ("the", "и") as noise in long bodies and
    # report whole paragraphs as rewritten.
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    raw: list[tuple[Op, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            raw.append((Op.EQUAL, "".join(a[i1:i2])))
            continue
        if tag in ("delete", "replace"):
            raw.append((Op.DELETE, "".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            raw.append((Op.INSERT, "".join(b[j1:j2])))
    return _merge(raw)


def _merge(raw: list[tuple[Op, str]]) -> list[Segment]:
    merged: list[Segment] = []
    for op, text in raw:
        if not text:
            continue
        if merged and merged[-1].op is op:
            merged[-1] = Segment(op, merged[-1].text + text)
        else:
            merged.append(Segment(op, text))
    return merged


def old_text(segments: list[Segment]) -> str:
    return "".join(s.text for s in segments if s.op is not Op.INSERT)


def new_text(segments: list[Segment]) -> str:
    return "".join(s.text for s in segments if s.op is not Op.DELETE)


def changed(segments: list[Segment]) -> bool:
    return any(s.op is not Op.EQUAL for s in segments)
