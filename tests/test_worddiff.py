"""The word diff of the edit history: exact on any input, word-sized on real edits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.worddiff import (
    MAX_TOKENS,
    Op,
    Segment,
    changed,
    new_text,
    old_text,
    tokens,
    word_diff,
)

# Words from a small vocabulary (so that the texts share words and the diff has work to do),
# any white space, and arbitrary text including controls, markup and astral characters.
WORDS = st.sampled_from(["брифинг", "брифинга", "Қазақстан", "the", "и", "<b>", "&amp;", "😀",
                         "a", "b"])
SPACES = st.sampled_from([" ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u2003"])
TEXT = st.one_of(
    st.lists(st.one_of(WORDS, SPACES), max_size=40).map("".join),
    st.text(max_size=80),
)


@given(TEXT, TEXT)
def test_the_segments_give_back_both_texts(old: str, new: str) -> None:
    segments = word_diff(old, new)
    assert old_text(segments) == old
    assert new_text(segments) == new
    assert all(s.text for s in segments)  # no empty segment
    # Adjacent segments differ in kind (merged), and a change is reported iff there is one.
    assert all(a.op is not b.op for a, b in zip(segments, segments[1:], strict=False))
    assert changed(segments) == (old != new)


@given(TEXT)
def test_tokens_join_back_to_the_text(text: str) -> None:
    assert "".join(tokens(text)) == text


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Брифинг в МИД", "Брифинг в МИД РК",
         [Segment(Op.EQUAL, "Брифинг в МИД"), Segment(Op.INSERT, " РК")]),
        ("the old title here", "the new title here",
         [Segment(Op.EQUAL, "the "), Segment(Op.DELETE, "old"), Segment(Op.INSERT, "new"),
          Segment(Op.EQUAL, " title here")]),
        ("drop this word", "drop word",
         [Segment(Op.EQUAL, "drop "), Segment(Op.DELETE, "this "), Segment(Op.EQUAL, "word")]),
        ("same", "same", [Segment(Op.EQUAL, "same")]),
        ("", "new", [Segment(Op.INSERT, "new")]),
        ("old", "", [Segment(Op.DELETE, "old")]),
        ("", "", []),
    ],
    ids=["append", "replace-word", "delete-word", "unchanged", "from-empty", "to-empty", "empty"],
)
def test_edits_are_reported_word_by_word(old: str, new: str, expected: list[Segment]) -> None:
    assert word_diff(old, new) == expected


def test_a_changed_word_is_whole_not_its_letters() -> None:
    # "брифинг" -> "брифинга" is one word replaced, not an added letter.
    assert word_diff("о брифинг", "о брифинга") == [
        Segment(Op.EQUAL, "о "), Segment(Op.DELETE, "брифинг"), Segment(Op.INSERT, "брифинга")]


@pytest.mark.parametrize("same", [False, True], ids=["different", "same"])
def test_huge_texts_are_one_replacement(same: bool) -> None:
    old = "w " * (MAX_TOKENS // 2 + 1)
    new = old if same else old + "x"
    segments = word_diff(old, new)
    assert (old_text(segments), new_text(segments)) == (old, new)
    expected = [Op.EQUAL] if same else [Op.DELETE, Op.INSERT]
    assert [s.op for s in segments] == expected
