"""The mock gov.kz's data and state: agencies, news, access grants, faults and the request log.

Everything here is guarded by one lock, because the WSGI server answers from several threads
while a test publishes, edits or switches the access scheme. Item ids come from one global,
increasing counter shared by all agencies, as on gov.kz.
"""

from __future__ import annotations

import bisect
import functools
import html
import random
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crawler.items import GOVKZ_SITE, LANGS
from crawler.mockgov.faults import Dialect, FaultSet
from crawler.timeutil import ALMATY, localize

if TYPE_CHECKING:
    from crawler.items import NewsItem

ACCESS_SCHEMES = ("plain", "token", "k6v1", "k6v2")
# How a news item names its agency in `projects` (gov.kz's shape is unknown): "list" ["mod"]
# (the default: the field is plural and filtered with projects=eq:<slug>), "slug" "mod",
# "objects" [{"id": 100001, "slug": "mod", "project_name": "…"}].
PROJECTS_SHAPES = ("list", "slug", "objects")
FIRST_ID = 1_200_000
DEFAULT_ROBOTS = "User-agent: *\nAllow: /\n"
# Handshakes a site honours at once; the oldest is forgotten beyond that (as gov.kz's expire).
# Each crawl child makes one, so a mock serving for days would otherwise keep thousands; a
# client whose handshake was forgotten is refused and handshakes again, as on gov.kz. 1,000 is
# far more than the clients of any test or demo hold at one time.
GRANTS_KEPT = 1_000


@dataclass
class Agency:
    slug: str
    names: dict[str, str]
    parent: str | None = None  # the parent agency's slug
    org_id: int = 0  # the numeric id GraphQL's parent_govorg{id} shows


@dataclass
class Text:
    title: str
    body: str
    short_description: str | None = None


@dataclass
class Story:
    """One news item in every language it was published in (one id for all of them)."""

    id: int
    agency: str
    created: datetime
    texts: dict[str, Text]
    heropic: str | None = None
    zulu: bool = False  # created_date written with "Z" instead of "+05:00", as some items are
    # `projects` served as is instead of in the site's shape (None): another agency too, or a
    # hostile value (a number, an empty list) for tests of the site-wide list.
    projects: Any = None

    def created_date(self) -> str:
        if self.zulu:
            return self.created.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        return self.created.astimezone(ALMATY).isoformat(timespec="milliseconds")

    def to_json(self, lang: str, projects: Any = None) -> dict:
        """The item as the news API serves it in ``lang``; ``projects`` as given, else the
        list of its agency's slug (MockSite.story_json gives the site's shape)."""
        text = self.texts[lang]
        data = {
            "id": self.id,
            "slug": _news_slug(self.id, self.texts.get("en", text).title),
            "title": text.title,
            "body": text.body,
            "created_date": self.created_date(),
            "heropic": self.heropic,
            "projects": [self.agency] if projects is None else projects,
        }
        if text.short_description:
            data["short_description"] = text.short_description
        return data


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; only the ones that matter to gov.kz clients
    status: int  # 0: the connection was dropped without an answer
    time: datetime
    agency: str | None = None
    lang: str | None = None


class IncompleteLog(LookupError):
    """A count asked of a bounded request log that has already dropped entries: the answer
    would be too small, so there is none."""


class RequestLog:
    """Every request the mock answered, in order (the newest `limit` of them when bounded).
    Thread-safe.

    Unbounded by default: a test reads the whole log of its few seconds. A mock that runs for
    days (`run --demo`, `python -m crawler.mockgov.serve`) passes a limit, else every request
    it ever answered stays in memory (about 1.5 KB each). `total` counts every request
    recorded either way; `count()` refuses to answer once entries were dropped.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"a request log limit must be at least 1, not {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)
        self._total = 0

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)  # a bounded deque drops its oldest entry itself
            self._total += 1

    def entries(self, **filters: object) -> list[LoggedRequest]:
        """The entries kept (all of them, unless the log is bounded) matching every filter
        given (see count()), oldest first."""
        with self._lock:
            entries = list(self._entries)
        return [e for e in entries if _matches(e, **filters)]

    def count(self, path: str | None = None, *, path_prefix: str | None = None,
              method: str | None = None, agency: str | None = None, lang: str | None = None,
              status: int | None = None) -> int:
        """How many requests since the last reset match every filter given; IncompleteLog
        when a bounded log dropped some of them already."""
        if self.dropped:
            raise IncompleteLog(f"the request log keeps only the newest {self.limit} entries "
                                f"and dropped {self.dropped}: it cannot count them all")
        return len(self.entries(path=path, path_prefix=path_prefix, method=method,
                                agency=agency, lang=lang, status=status))

    @property
    def total(self) -> int:
        """Requests recorded since the last reset, kept or dropped."""
        with self._lock:
            return self._total

    @property
    def dropped(self) -> int:
        """Requests recorded since the last reset whose entries a bounded log let go."""
        with self._lock:
            return self._total - len(self._entries)

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
            self._total = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _matches(e: LoggedRequest, path: object = None, path_prefix: object = None,
             method: object = None, agency: object = None, lang: object = None,
             status: object = None) -> bool:
    return ((path is None or e.path == path)
            and (path_prefix is None or e.path.startswith(str(path_prefix)))
            and (method is None or e.method == str(method).upper())
            and (agency is None or e.agency == agency)
            and (lang is None or e.lang == lang)
            and (status is None or e.status == status))


@dataclass
class _Grant:
    kind: str  # "k6v1" (cookie) or "k6v2" (header)
    remaining: int | None  # news requests left; None: unlimited


@dataclass(eq=False)
class MockSite:
    """A small gov.kz: agencies, their news in three languages, and how the API guards them."""

    access: str = "plain"
    public_site: str | None = None  # base of the links in RSS; None: the mock's own URL
    handshake_uses: int | None = None  # a k6 handshake expires after this many news requests
    expire_on_switch: bool = True  # set_access() invalidates every handshake
    robots_txt: str | None = DEFAULT_ROBOTS  # None: /robots.txt answers 404
    rss_limit: int = 20
    projects_shape: str = "list"  # one of PROJECTS_SHAPES
    first_id: int = FIRST_ID
    faults: FaultSet = field(default_factory=FaultSet)
    dialect: Dialect = field(default_factory=Dialect)  # page base, Kazakh code, GraphQL news
    log: RequestLog = field(default_factory=RequestLog)
    grants_kept: int = GRANTS_KEPT

    def __post_init__(self) -> None:
        if self.access not in ACCESS_SCHEMES:
            raise ValueError(f"unknown access scheme {self.access!r}; one of {ACCESS_SCHEMES}")
        if self.projects_shape not in PROJECTS_SHAPES:
            raise ValueError(f"unknown projects shape {self.projects_shape!r}; "
                             f"one of {PROJECTS_SHAPES}")
        self._lock = threading.RLock()
        self._agencies: dict[str, Agency] = {}
        self._stories: dict[str, list[Story]] = {}
        self._by_id: dict[int, Story] = {}
        self._next_id = self.first_id
        self._grants: dict[str, _Grant] = {}
        # Synthetic agencies are generated on first use: slug -> generator of its stories.
        self._lazy: dict[str, Callable[[], list[Story]]] = {}
        self._lazy_ids: Callable[[int], str | None] = lambda _id: None
        # The site-wide list per language, oldest first by (created, id): built on its first
        # request, then kept sorted as stories are added, so a page costs no sort.
        self._everything: dict[str, list[Story]] | None = None

    # --- agencies and news --------------------------------------------------------------------
    def add_agency(self, slug: str, names: dict[str, str] | None = None,
                   parent: str | None = None) -> Agency:
        with self._lock:
            agency = self._agencies.get(slug)
            if agency is None:
                agency = Agency(slug, {lang: slug for lang in LANGS},
                                org_id=100_000 + len(self._agencies))
                self._agencies[slug] = agency
                self._stories.setdefault(slug, [])
            agency.names.update(names or {})
            agency.parent = parent if parent is not None else agency.parent
            return agency

    def agencies(self) -> list[Agency]:
        with self._lock:
            return list(self._agencies.values())

    def agency(self, slug: str) -> Agency | None:
        with self._lock:
            return self._agencies.get(slug)

    def publish(self, slug: str, *, title: dict[str, str] | str, body: dict[str, str] | str,
                created: datetime | None = None, langs: Iterable[str] | None = None,
                heropic: bool | str = True, wrap_html: bool = False,
                short_description: dict[str, str] | str | None = None,
                zulu: bool = False, projects: Any = None) -> int:
        """Publish one item; returns its id (the same in every language).

        ``langs`` defaults to the keys of ``title`` when it is a dict, else all three languages.
        A naive ``created`` is gov.kz local time; None means now. ``projects`` is served as is
        in the item's `projects` (default: its agency, in the site's projects_shape).
        """
        langs = list(langs or (title if isinstance(title, dict) else ("ru", "kk", "en")))
        if not langs or set(langs) - set(LANGS):
            raise ValueError(f"publish needs languages among {LANGS}, got {langs}")
        created = _ms(localize(created) if created else datetime.now(ALMATY))
        texts = {}
        for lang in langs:
            text = Text(_pick(title, lang), _pick(body, lang),
                        _pick(short_description, lang) if short_description else None)
            if wrap_html:
                text.body = f"<html><head></head><body>{text.body}</body></html>"
            texts[lang] = text
        with self._lock:
            self.add_agency(slug)
            story = Story(self._take_id(), slug, created, texts, zulu=zulu, projects=projects)
            if heropic:
                story.heropic = heropic if isinstance(heropic, str) else _heropic(story)
            self._add(story)
            return story.id

    def edit(self, slug: str, item_id: int, lang: str, *, title: str | None = None,
             body: str | None = None) -> None:
        with self._lock:
            story = self._story(item_id)
            if story is None or story.agency != slug or lang not in story.texts:
                raise KeyError(f"no item {slug}/{item_id} in {lang}")
            text = story.texts[lang]
            text.title = title if title is not None else text.title
            text.body = body if body is not None else text.body

    def unpublish(self, item_id: int) -> None:
        """Take an item off the site in every language (gov.kz removes items too)."""
        with self._lock:
            story = self._story(item_id)
            if story is None:
                raise KeyError(f"no item {item_id}")
            stories = self._stories_of(story.agency)
            del stories[next(i for i, s in enumerate(stories) if s is story)]
            del self._by_id[item_id]
            if self._everything is not None:
                for lang in story.texts:
                    ordered = self._everything[lang]  # sorted by _order: found by bisection
                    del ordered[bisect.bisect_left(ordered, _order(story), key=_order)]

    def items(self, slug: str | None, lang: str) -> list[dict]:
        """An agency's items in ``lang`` as the API serves them, newest first; slug None: the
        site-wide list, every agency's."""
        return [self.story_json(story, lang) for story in self.select(slug, lang)]

    def item(self, item_id: int, lang: str) -> dict | None:
        with self._lock:
            story = self._story(item_id)
            return self.story_json(story, lang) if story and lang in story.texts else None

    def story_json(self, story: Story, lang: str) -> dict:
        """A story as the news API serves it, `projects` in this site's projects_shape."""
        if story.projects is not None:
            return story.to_json(lang, story.projects)
        if self.projects_shape == "slug":
            return story.to_json(lang, story.agency)
        if self.projects_shape == "objects":
            agency = self.agency(story.agency)
            names = agency.names if agency else {}
            return story.to_json(lang, [{
                "id": agency.org_id if agency else 0, "slug": story.agency,
                "project_name": names.get(lang, story.agency),
            }])
        return story.to_json(lang)

    def agency_of(self, item_id: int) -> str | None:
        with self._lock:
            story = self._story(item_id)
            return story.agency if story else None

    def select(self, slug: str | None, lang: str, *, after: datetime | None = None,
               ascending: bool = False) -> list[Story]:
        """The stories in ``lang`` (of one agency, or all), newest first; ties by id."""
        if slug is None:
            return self._select_all(lang, after=after, ascending=ascending)
        with self._lock:
            stories = [s for s in self._stories_of(slug)
                       if lang in s.texts and (after is None or s.created > after)]
        stories.sort(key=_order, reverse=not ascending)
        return stories

    def _select_all(self, lang: str, *, after: datetime | None,
                    ascending: bool) -> list[Story]:
        # The site-wide list: a slice of the presorted one, O(result) per request whatever
        # the number of agencies.
        with self._lock:
            if self._everything is None:
                for lazy in list(self._lazy):
                    self._stories_of(lazy)
                everything = [s for one in self._stories.values() for s in one]
                everything.sort(key=_order)
                self._everything = {code: [s for s in everything if code in s.texts]
                                    for code in LANGS}
            stories = self._everything.get(lang, [])
            start = 0 if after is None else bisect.bisect_right(stories, after,
                                                                key=lambda s: s.created)
            chosen = stories[start:]
        return chosen if ascending else chosen[::-1]

    # --- access control -----------------------------------------------------------------------
    def set_access(self, scheme: str, *, expire: bool | None = None) -> None:
        """Switch the access scheme; by default every handshake done so far stops working."""
        if scheme not in ACCESS_SCHEMES:
            raise ValueError(f"unknown access scheme {scheme!r}; one of {ACCESS_SCHEMES}")
        with self._lock:
            self.access = scheme
            if self.expire_on_switch if expire is None else expire:
                self._grants.clear()

    def issue_grant(self, kind: str) -> str:
        """A new handshake secret (k6v1 cookie value or k6v2 header value)."""
        value = secrets.token_hex(16)
        with self._lock:
            self._grants[value] = _Grant(kind, self.handshake_uses)
            while len(self._grants) > max(1, self.grants_kept):
                del self._grants[next(iter(self._grants))]  # the oldest: dicts keep order
        return value

    def use_grant(self, kind: str, value: str | None) -> bool:
        """Spend one news request of a handshake; False if unknown, of another kind or used up."""
        with self._lock:
            grant = self._grants.get(value or "")
            if grant is None or grant.kind != kind:
                return False
            if grant.remaining is not None:
                grant.remaining -= 1
                if grant.remaining <= 0:
                    del self._grants[value or ""]
            return True

    # --- request log shortcuts ----------------------------------------------------------------
    def count(self, path: str | None = None, **filters: object) -> int:
        return self.log.count(path, **filters)  # type: ignore[arg-type]

    def reset_log(self) -> None:
        self.log.reset()

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_seeds(cls, items: Iterable[NewsItem], **options: object) -> MockSite:
        """A site holding the items the snapshot extractor found, in all three languages.

        Positive ids are kept; each negative (synthetic) id gets a new gov.kz-like id. The
        languages a snapshot lacks are copies titled "[ru] …", "[kk] …" so multi-language
        crawls can be tested. An undated (cut-off) item is dated just before its agency's oldest.
        """
        site = cls(**options)  # type: ignore[arg-type]
        grouped: dict[tuple[str, int], dict[str, NewsItem]] = {}
        for item in items:
            grouped.setdefault((item.agency, item.id), {}).setdefault(item.lang, item)
        site._next_id = max([site._next_id] + [i + 1 for _, i in grouped if i > 0])
        oldest: dict[str, datetime] = {}
        for (slug, _), by_lang in grouped.items():
            for it in by_lang.values():
                if it.published and (slug not in oldest or it.published < oldest[slug]):
                    oldest[slug] = it.published
        with site._lock:
            for (slug, old_id), by_lang in grouped.items():
                first = next(iter(by_lang.values()))
                texts = {lang: _seed_text(it) for lang, it in by_lang.items()}
                for lang in LANGS:
                    if lang not in texts:
                        copy = _seed_text(first)
                        texts[lang] = Text(f"[{lang}] {copy.title}", copy.body,
                                           copy.short_description)
                when = first.published or oldest.get(slug, datetime.now(ALMATY)) - timedelta(
                    minutes=1)
                site.add_agency(slug)
                story = Story(old_id if old_id > 0 else site._take_id(), slug, _ms(when), texts,
                              heropic=_site_relative(first.image))
                site._add(story)
        return site

    @classmethod
    def synthetic(cls, agencies: int, items_per_agency: int, seed: int = 0,
                  **options: object) -> MockSite:
        """Deterministic agencies ``test-agency-001``… with generated items, for scale tests.

        Items are generated per agency on first use, so thousands of agencies cost nothing
        until crawled. Item n (over all agencies, oldest first) has id first_id + n and is
        dated 7 minutes after item n-1, ending 2026-06-30 12:00 Almaty.
        """
        site = cls(**options)  # type: ignore[arg-type]
        total = agencies * items_per_agency
        base = site._next_id
        site._next_id = base + total
        end = datetime(2026, 6, 30, 12, 0, tzinfo=ALMATY)
        slugs = [f"test-agency-{i + 1:03d}" for i in range(agencies)]
        for i, slug in enumerate(slugs):
            parent = slugs[i - i % 10] if i % 10 else None
            site.add_agency(slug, _agency_names(i + 1), parent)
            site._lazy[slug] = functools.partial(
                _generate, slug, i, agencies, items_per_agency, seed, base, end)

        def owner(item_id: int) -> str | None:
            n = item_id - base
            return slugs[n % agencies] if 0 <= n < total else None

        site._lazy_ids = owner
        return site

    # --- internals (call with the lock held) --------------------------------------------------
    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _add(self, story: Story) -> None:
        if story.id in self._by_id and self._by_id[story.id].agency != story.agency:
            raise ValueError(f"item id {story.id} is used by two agencies")
        self._stories_of(story.agency).append(story)
        self._by_id[story.id] = story
        if self._everything is not None:
            for lang in story.texts:
                bisect.insort(self._everything[lang], story, key=_order)

    def _stories_of(self, slug: str) -> list[Story]:
        make = self._lazy.pop(slug, None)
        if make is not None:
            stories = make()
            self._stories.setdefault(slug, []).extend(stories)
            self._by_id.update((s.id, s) for s in stories)
        return self._stories.get(slug, [])

    def _story(self, item_id: int) -> Story | None:
        if item_id not in self._by_id:
            owner = self._lazy_ids(item_id)
            if owner:
                self._stories_of(owner)
        return self._by_id.get(item_id)


def _order(story: Story) -> tuple[datetime, int]:
    return (story.created, story.id)


def _pick(value: dict[str, str] | str, lang: str) -> str:
    if isinstance(value, str):
        return value
    return value.get(lang) or next(iter(value.values()))


def _ms(when: datetime) -> datetime:
    # The API writes milliseconds; keeping more would make `created_date=gt:<an item's own
    # created_date>` return that item again.
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _heropic(story: Story) -> str:
    day = story.created.astimezone(ALMATY)
    token = story.id * 0x9E3779B97F4A7C15 % (1 << 64)  # a stable, random-looking file name
    return f"/uploads/{day.year}/{day.month}/{day.day}/{token:016x}_original.jpg"


def _news_slug(item_id: int, title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())[:8]
    return "-".join(words) or f"news-{item_id}"


def _seed_text(item: NewsItem) -> Text:
    paragraphs = (p for p in item.body_text.split("\n") if p.strip())
    body = item.body_html or "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return Text(item.title, body, item.summary or None)


def _site_relative(url: str | None) -> str | None:
    if url and url.startswith(GOVKZ_SITE):
        return url[len(GOVKZ_SITE):]
    return url


# --- synthetic data ----------------------------------------------------------------------------
_WORDS = {
    "ru": "министр встреча развитие программа регион совещание итоги проект граждане "
          "цифровизация образование здравоохранение бюджет поддержка инвестиции".split(),
    "kk": "министр кездесу даму бағдарлама өңір кеңес қорытынды жоба азаматтар "
          "цифрландыру білім денсаулық бюджет қолдау инвестициялар".split(),
    "en": "minister meeting development programme region session results project citizens "
          "digitalization education healthcare budget support investment".split(),
}
_STEP = timedelta(minutes=7)


def _agency_names(number: int) -> dict[str, str]:
    return {"ru": f"Тестовое ведомство №{number:03d}", "kk": f"Сынақ мекемесі №{number:03d}",
            "en": f"Test agency No. {number:03d}"}


@functools.lru_cache(maxsize=8)
def _phrases(seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """Per language, 64 titles and 64 paragraphs; entry k is the same "sentence" in each
    language (word positions are drawn once and spelled per language)."""
    rng = random.Random(seed)
    size = len(_WORDS["en"])
    titles = [rng.choices(range(size), k=rng.randint(4, 9)) for _ in range(64)]
    paragraphs = [rng.choices(range(size), k=rng.randint(12, 40)) for _ in range(64)]
    return {lang: ([" ".join(words[w] for w in t).capitalize() for t in titles],
                   [" ".join(words[w] for w in p) + "." for p in paragraphs])
            for lang, words in _WORDS.items()}


def _generate(slug: str, index: int, agencies: int, per_agency: int, seed: int, base: int,
              end: datetime) -> list[Story]:
    """Agency ``index``'s stories: item j is global item n = j * agencies + index."""
    rng = random.Random(f"{seed}:{slug}")
    phrases = _phrases(seed)
    total = agencies * per_agency
    stories = []
    for j in range(per_agency):
        n = j * agencies + index
        title = rng.randrange(64)
        chosen = [rng.randrange(64) for _ in range(rng.randint(1, 3))]
        texts = {}
        for lang, (titles, paragraphs) in phrases.items():
            body = "".join(f"<p>{paragraphs[k]}</p>" for k in chosen)
            if n % 4 == 1:
                body += f'<p><a href="/uploads/docs/{base + n}.pdf">{_WORDS[lang][0]}</a></p>'
            if n % 4 == 2:
                body = f"<html><head></head><body>{body}</body></html>"
            short = paragraphs[chosen[0]][:120] if n % 3 == 0 else None
            texts[lang] = Text(f"{titles[title]} №{n + 1}", body, short)
        story = Story(base + n, slug, end - (total - 1 - n) * _STEP, texts, zulu=n % 5 == 4)
        story.heropic = _heropic(story) if n % 6 else None
        stories.append(story)
    return stories
