"""Page memos: page 1 of an incremental walk recognised by its bytes (pure: no requests, no
storage).

A quiet re-crawl asks every walk's page 1 and, most of the time, gets back the very bytes it got
last time. Extracting them again (JSON, then every body through lxml) only to find every item
unchanged was about a third of such a crawl's CPU. So when page 1 turns out entirely quiet, the
spider keeps a memo of it (crawler/items.py PageMemo, stored by the pipelines after the items),
and on the next crawl a page 1 with the memo's digest is quiet without being extracted.

Why a hit is the page the full path would have found quiet:
* the digest covers everything extraction reads: the request as sent (method, URL, body,
  Accept-Language: agency, page, size, language code, `since`), the walk, the site links are
  made absolute against, the response's status, URL and body bytes, and EXTRACTION_VERSION
  (crawler/extract/api.py), which changes with any change of what extraction makes of bytes.
  Same digest, same items: an item added or edited on the site changes the bytes;
* the archive is checked too: a memo is usable only while every item it names is stored with
  the content hash it records (crawler/store_monitor.py page_memos, one query at spider open).
  A memo whose item another writer edited since (a site-wide crawl storing an edit a
  per-agency page 1 still shows in its old form, a replay) or that is no longer stored is not
  used: that page is extracted and stored as without memos (the old copy is then an edit
  again, as before), and its memo refreshed or deleted. Nothing deletes items today; if
  something ever does, the same check keeps a memo from outliving them. The check runs when
  the crawl opens: a write by another process during this crawl can only keep that process's
  edit in place of the page's older copy for one crawl, never hide a new or edited item (both
  are stored); the next crawl's check sees it;
* whether the walk ends at page 1 is decided by the walk's own rule (PagingPlan.decide) on
  what the memo recorded, with this crawl's plan: a moved mark, `--backfill`, `--since`
  fall back to the full path like any difference.
"""

from __future__ import annotations

import hashlib

from crawler.extract.api import EXTRACTION_VERSION
from crawler.items import NewsItem, PageMemo
from crawler.sync import PagingPlan, item_key


def page_digest(
    *, agency: str, lang: str, site: str, method: str, url: str, request_body: bytes,
    accept_language: bytes, status: int, response_url: str, response_body: bytes,
    version: int = EXTRACTION_VERSION,
) -> str:
    """What a page 1 was, for comparing with its memo: BLAKE2b over every input of its
    extraction (a few microseconds per KB of body). Each part length-prefixed, so no two
    different sets of parts run together into the same bytes."""
    digest = hashlib.blake2b(digest_size=20)
    texts = (str(version), agency, lang, site, method, url, str(status), response_url)
    for part in (*(text.encode() for text in texts), accept_language, request_body,
                 response_body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def memo_hit(memo: PageMemo | None, digest: str, plan: PagingPlan) -> bool:
    """Whether page 1 with this `digest` is the memo's page and ends the walk as it did: a
    memo of this extraction version, the same bytes, and the walk's rule stopping at a page
    of the memo's items, all known."""
    if memo is None or memo.version != EXTRACTION_VERSION or memo.digest != digest:
        return False
    more, _ = plan.decide(1, count=len(memo.items), rejected=0, oldest=memo.oldest,
                          all_known=True)
    return not more


def quiet_memo(
    agency: str, lang: str, digest: str, items: list[NewsItem],
    known: dict[tuple[str, int], str], hashes: dict[tuple[str, int], str], *,
    rejected: int, details: int, more: bool, found: int,
) -> PageMemo | None:
    """The memo of a page 1 that was entirely quiet: no rejects, no detail requests, every
    item stored with the hash it has now, and the walk stopping there (`more` False); None
    for any other page. `found`: its items the list gave with a body."""
    if rejected or details or more:
        return None
    if any(item.lang != lang or known.get(item_key(item)) != hashes.get(item_key(item))
           for item in items):
        return None
    return PageMemo(
        agency, lang, digest, newest=PagingPlan.newest(items), oldest=PagingPlan.oldest(items),
        found=found, items=tuple((item.agency, item.id, hashes[item_key(item)])
                                 for item in items),
        version=EXTRACTION_VERSION,
    )
