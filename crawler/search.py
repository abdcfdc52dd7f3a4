"""Search: the stemmed text the archive indexes, and the query language. Pure: no SQL, no I/O.

The archive keeps a shadow full-text index (`items_search`, crawler/migrations.py) whose text is
not the item's words but their stems, so that word forms match: `брифинга` and `брифинг` are
both `брифинг`, `briefings` and `briefing` both `brief`. The store writes that text with
`index_text` and asks the index with `Query.match`; both go through `stem`, so a word is reduced
the same way on both sides whatever the reduction is.

How a word is reduced depends on its script and the item's language (its *profile*):

* Latin words: Snowball English (PyStemmer), in every language (names such as "Kazakhstan").
* Cyrillic words in a Russian or English item: Snowball Russian.
* Cyrillic words in a Kazakh item: Snowball has no Kazakh, so a light suffix rule
  (`kazakh_stem`): Kazakh is agglutinative and regular, a word is root + plural + possessive +
  case, so stripping known plural, possessive and case endings (longest first, up to four times,
  never below a short root) and undoing the voicing of the root's last consonant before a
  vowel ending (министрлік -> министрлігі) brings the forms of a word to one key.
  It over-strips some words (Алматы and алма share a key); that costs precision, not recall,
  and a quoted phrase or more words narrow it again.

A query does not know its language unless filtered by one, so each query word is reduced under
both profiles (ru, kk) and either form matches.

The query language: words (all must match, in the title or the body), `OR` between two terms
(either), "quoted phrases", `-word` or `-"a phrase"` (must not match), `prefix*`. Anything else
is a separator, so FTS5 syntax in user input (AND, NOT, NEAR, column:, parentheses) is inert:
every term reaches FTS5 as a quoted string of word characters. Nothing to look for is an empty
query (no results); only exclusions, or an oversized query, is a QueryError.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import Stemmer

from crawler.errors import GovkzError

# A word: letters and digits. (\w less "_", which SQLite's unicode61 tokenizer splits on too.)
WORD = re.compile(r"[^\W_]+")
CYRILLIC = re.compile(r"[\u0400-\u052f]")
LATIN = re.compile(r"[a-z]")
PROFILES = ("ru", "kk")  # how Cyrillic words are reduced: Snowball Russian, or the Kazakh rule
MAX_QUERY_CHARS = 1000
MAX_WORDS = 32  # words over all terms; FTS5 would take more, a person never types more
SNIPPET_BEFORE, SNIPPET_AFTER = 60, 180  # characters of context around the first match
# FTS5 columns of the shadow index (crawler/migrations.py): the text, then two filter columns.
TEXT_COLUMNS = "{title body}"


class QueryError(GovkzError):
    """A search query that cannot be run: nothing but exclusions, or too long. Its message is
    one line for the person who typed it."""


def profile(lang: str | None) -> str:
    """The profile of an item's language: Kazakh items use the Kazakh rule, others Russian."""
    return "kk" if lang == "kk" else "ru"


# --- stemming ---------------------------------------------------------------------------------

_local = threading.local()  # a PyStemmer Stemmer must not be shared between threads


def _stemmer(name: str) -> Stemmer.Stemmer:
    stemmers = _local.__dict__.setdefault("stemmers", {})
    if name not in stemmers:
        stemmers[name] = Stemmer.Stemmer(name)
    return stemmers[name]


# Kazakh endings, outermost layer first in a word but tried longest first: case (genitive,
# dative, accusative, locative, ablative, instrumental, relative), possessive, plural. Lone
# consonant endings (-м, -ң, -н) are left alone: too many roots end in them.
_KAZAKH_ENDINGS = sorted(
    {
        "ның", "нің", "дың", "дің", "тың", "тің",
        "ға", "ге", "қа", "ке", "на", "не", "а", "е",
        "ны", "ні", "ды", "ді", "ты", "ті",
        "да", "де", "та", "те", "нда", "нде",
        "дан", "ден", "тан", "тен", "нан", "нен",
        "мен", "бен", "пен",
        "дағы", "дегі", "тағы", "тегі", "ндағы", "ндегі",
        "ымыз", "іміз", "ыңыз", "іңіз", "мыз", "міз", "ңыз", "ңіз",
        "ым", "ім", "ың", "ің", "сы", "сі", "ы", "і",
        "лар", "лер", "дар", "дер", "тар", "тер",
    },
    key=len, reverse=True,
)  # fmt: skip
_KAZAKH_PASSES = 4
# A root keeps at least this many letters: 2 after a longer ending (ел-дер), 4 after a one-letter
# vowel ending, which is the most ambiguous (елі, ана stay whole).
_KAZAKH_MIN_ROOT, _KAZAKH_MIN_ROOT_VOWEL = 2, 4
# The root's last consonant is voiced before a vowel (министрлік -> министрлігі, кітап ->
# кітабы): keys always end devoiced, whether an ending was stripped or not.
_DEVOICE = str.maketrans({"г": "к", "ғ": "қ", "б": "п"})


def kazakh_stem(word: str) -> str:
    """The key of a lower-case Cyrillic Kazakh word: known endings stripped, last consonant
    devoiced (see the module docstring)."""
    for _ in range(_KAZAKH_PASSES):
        for ending in _KAZAKH_ENDINGS:
            least = _KAZAKH_MIN_ROOT_VOWEL if len(ending) == 1 else _KAZAKH_MIN_ROOT
            if word.endswith(ending) and len(word) - len(ending) >= least:
                word = word[: -len(ending)]
                break
        else:
            break
    return word[:-1] + word[-1].translate(_DEVOICE) if word else word


def fold(text: str) -> str:
    """Case and ё folded, the same way for the index and the query."""
    return text.casefold().replace("ё", "е")


@lru_cache(maxsize=262_144)
def stem(word: str, profile: str) -> str:
    """The index key of one folded word under a profile ("ru" or "kk")."""
    if CYRILLIC.search(word):
        key = kazakh_stem(word) if profile == "kk" else _stemmer("russian").stemWord(word)
    elif LATIN.search(word):
        key = _stemmer("english").stemWord(word)
    else:
        key = word  # digits, other scripts: as they are
    return key or word


def words(text: str) -> list[str]:
    return WORD.findall(fold(text))


def index_text(text: str, lang: str | None) -> str:
    """What the shadow index holds for `text` of an item in `lang`: its keys, in order (so that
    phrases still match), separated by spaces."""
    prof = profile(lang)
    return " ".join([stem(word, prof) for word in words(text)])


def facet_token(value: str) -> str:
    """An agency slug or a language as one index token of the filter columns: as it is, a
    slug's hyphens would make "mfa" match "mfa-rabat"."""
    return "x" + value.encode().hex()


# --- the query language -----------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One word or phrase of a query; `prefix`: its last word is a prefix (`брифин*`)."""

    words: tuple[str, ...]
    prefix: bool = False

    def forms(self, profiles: Iterable[str]) -> list[str]:
        """FTS5 phrases matching this term under the profiles, most specific first."""
        found: dict[str, None] = {}
        for prof in profiles:
            keys = [stem(word, prof) for word in self.words]
            if not self.prefix:
                found[_phrase(keys)] = None
                continue
            # The last word as typed and as reduced: "брифинга*" must match the key "брифинг",
            # "брифин*" the key "брифинг" too; reduced, a prefix may lose a letter, typed not.
            for last in dict.fromkeys((self.words[-1], keys[-1])):
                found[_phrase([*keys[:-1], last]) + " *"] = None
        return list(found)

    def matches(self, key: str, prof: str) -> bool:
        """Whether the index key of one word of an item starts this term (for snippets)."""
        wanted = stem(self.words[0], prof)
        if self.prefix and len(self.words) == 1:
            return key.startswith(wanted) or key.startswith(self.words[0])
        return key == wanted  # a phrase: its first word


def _phrase(keys: list[str]) -> str:
    # Keys are word characters only (WORD), so quoting them cannot produce FTS5 syntax.
    return '"' + " ".join(keys) + '"'


@dataclass(frozen=True)
class Query:
    """A parsed query: every group must match (a group: any of its terms), no exclusion may."""

    groups: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.groups

    def match(self, *, lang: str | None = None, agency: str | None = None) -> str:
        """The FTS5 expression for the shadow index; `lang` narrows both the profiles the words
        are reduced under and the items, `agency` the items."""
        if self.empty:
            raise QueryError("nothing to search for")
        profiles = PROFILES if lang is None else (profile(lang),)
        parts = [_any(group, profiles) for group in self.groups]
        if agency is not None:
            parts.append(f'agency : "{facet_token(agency)}"')
        if lang is not None:
            parts.append(f'lang : "{facet_token(lang)}"')
        expression = " AND ".join(parts)
        if self.excluded:
            expression = f"({expression}) NOT {_any(self.excluded, profiles)}"
        return expression

    def snippet(self, title: str, body: str, lang: str | None) -> str:
        """A line of `body` around the first word a term matches (its start when none does)."""
        terms = [term for group in self.groups for term in group]
        prof = profile(lang)
        found = None
        for match in WORD.finditer(body):
            key = stem(fold(match.group()), prof)
            if any(term.matches(key, prof) for term in terms):
                found = match
                break
        if found is None:
            return _clip(body, 0, SNIPPET_AFTER + SNIPPET_BEFORE) or _clip(title, 0, 240)
        return _clip(body, found.start() - SNIPPET_BEFORE, found.end() + SNIPPET_AFTER)


def _any(terms: Iterable[Term], profiles: Iterable[str]) -> str:
    profiles = tuple(profiles)
    forms = dict.fromkeys(form for term in terms for form in term.forms(profiles))
    return f"{TEXT_COLUMNS} : ({' OR '.join(forms)})"


def _clip(text: str, start: int, end: int) -> str:
    """text[start:end] widened to whole words, on one line, with … where it was cut."""
    start, end = max(start, 0), min(end, len(text))
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    line = " ".join(text[start:end].split())
    return ("…" if start > 0 else "") + line + ("…" if end < len(text) and line else "")


# A query token: an optional "-", then a "phrase" (closed by the end if unbalanced) or a run of
# non-space characters without quotes.
_TOKEN = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')


def _tokens(text: str) -> Iterator[tuple[bool, Term | None]]:
    """(excluded, term) per token; term None for the operator OR."""
    for minus, phrase, bare in _TOKEN.findall(text):
        if bare == "OR" and not minus:
            yield False, None
            continue
        raw = phrase if phrase or not bare else bare
        found = words(raw)
        if not found:
            continue
        # A run like "Нур-Султан" or "COVID-19" is indexed as adjacent words: a phrase.
        prefix = not phrase and bare.endswith("*") and bool(WORD.search(bare[-2:-1] or ""))
        yield bool(minus), Term(tuple(found), prefix=prefix)


def parse(text: str) -> Query:
    """The query in `text`; QueryError when it cannot be run (see the module docstring)."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is too long (over {MAX_QUERY_CHARS} characters)")
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    joined = False  # the previous token was OR, after a positive term
    for minus, term in _tokens(text):
        if term is None:
            joined = bool(groups)
            continue
        if minus:
            excluded.append(term)
        elif joined:
            groups[-1].append(term)
        else:
            groups.append([term])
        joined = False
    count = sum(len(term.words) for term in [*excluded, *(t for g in groups for t in g)])
    if count > MAX_WORDS:
        raise QueryError(f"the query has too many words ({count}; at most {MAX_WORDS})")
    if excluded and not groups:
        raise QueryError("a query needs a word to look for, not only words to leave out (-word)")
    return Query(tuple(tuple(group) for group in groups), tuple(excluded))



# --- the order of the index -------------------------------------------------------------------
# The shadow index's rowid is a sort key: the item's publication time in seconds since 1970,
# times KEY_SLOTS, plus a slot per item of that second. FTS5 walks a match's rows in rowid
# order and stops at the LIMIT, so "newest first, top 20" reads 20 rows, not every match, and
# `since` is a rowid range; no sort, no scan of the matches.
KEY_SLOTS = 1 << 24
_MAX_SECONDS = 1 << 38  # keys stay below 2**62, and far past any publication date


def key_range(when: datetime) -> tuple[int, int]:
    """[first, past-the-last) keys of the second `when` (an aware datetime) falls in."""
    seconds = min(max(int(when.timestamp()), 0), _MAX_SECONDS)
    return seconds * KEY_SLOTS, (seconds + 1) * KEY_SLOTS
