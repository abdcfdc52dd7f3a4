"""Scrapy settings for govkz-monitor.

Every project setting starts with GOVKZ_. Each can be overridden per run with `-s NAME=value`
(Scrapy's way) or with an environment variable of the same name; the CLI maps its flags onto them.
Nothing here opens a database or a socket: reading the environment is all that happens on import.
"""

from __future__ import annotations

import os

BOT_NAME = "govkz_monitor"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


# Scrapy's cookie middleware splits domains with tldextract, which on first use downloads the
# Public Suffix List from the internet (and logs a traceback where it cannot). The crawler talks
# to one host; the list bundled with tldextract is enough, so it never fetches anything else.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


# --- Project settings -------------------------------------------------------------------------
# Where the archive (news.db) and the feeds (feeds/) live.
GOVKZ_DATA = _env("GOVKZ_DATA", "data")
# Where the saved gov.kz pages for `replay` live.
GOVKZ_SEEDS = _env("GOVKZ_SEEDS", "seeds")
# The site the live spider talks to: gov.kz itself, a mirror, or the local mock.
GOVKZ_BASE_URL = _env("GOVKZ_BASE_URL", "https://www.gov.kz")
# Where the feeds are published; used for the feeds' self links and the OPML index.
GOVKZ_PUBLIC_URL = _env("GOVKZ_PUBLIC_URL", "http://127.0.0.1:8080/")
# How many entries each feed holds.
GOVKZ_FEED_LIMIT = int(_env("GOVKZ_FEED_LIMIT", "50"))
# A page people can read to learn who runs this bot and how to reach them.
GOVKZ_CONTACT_URL = _env("GOVKZ_CONTACT_URL", "https://github.com/govkz-monitor/govkz-monitor")

# --- Politeness (gov.kz publishes no robots.txt or rate limits: be conservative) ----------------
USER_AGENT = f"govkz-monitor/0.1 (+{GOVKZ_CONTACT_URL})"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 4
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5  # +-50%: requests do not arrive on a fixed beat
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 30
# A news page with a huge inline body is a few hundred KiB; anything near this is not news.
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
COOKIES_ENABLED = True
TELNETCONSOLE_ENABLED = False
# No control ports: a crawl is a short-lived process the daemon supervises from outside.
EXTENSIONS = {"scrapy.extensions.remote_control.RemoteControl": None}

SPIDER_MIDDLEWARES = {
    # Nearest the spider, so it sees a callback's exception first (crawler/contain.py).
    "crawler.contain.UnexpectedErrorsMiddleware": 950,
}
ITEM_PIPELINES = {
    "crawler.pipelines.ValidateItemPipeline": 100,
    "crawler.pipelines.ArchivePipeline": 500,
    "crawler.pipelines.FeedsPipeline": 900,
}

LOG_LEVEL = _env("GOVKZ_LOG_LEVEL", "INFO")
FEED_EXPORT_ENCODING = "utf-8"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

# --- Live crawling of gov.kz (spider "govkz") ------------------------------------------------
# Access strategies, tried in order: "auto" = k6v1, k6v2, token, plain, then the official RSS.
GOVKZ_ACCESS = _env("GOVKZ_ACCESS", "auto")
GOVKZ_PAGE_SIZE = int(_env("GOVKZ_PAGE_SIZE", "50"))  # the API accepts up to 100
GOVKZ_BACKFILL_PAGES = int(_env("GOVKZ_BACKFILL_PAGES", "2"))  # first walk of a new agency
GOVKZ_MAX_PAGES = int(_env("GOVKZ_MAX_PAGES", "200"))  # hard bound on one walk
GOVKZ_LANGS = _env("GOVKZ_LANGS", "ru,kk,en")
GOVKZ_RETRY_AFTER_MAX = 120.0  # never wait longer than one Retry-After (on a 429 or a 503)
GOVKZ_RETRY_AFTER_TIMES = 3  # retries of a 429 (RETRY_TIMES counts the 5xx ones)
# Retries of a 5xx answer or a failed connection (RETRY_HTTP_CODES, RETRY_EXCEPTIONS) wait, so a
# struggling site gets room to recover: BASE seconds before the first retry, twice as long
# before each next one, never more than MAX (crawler.middlewares.BackoffRetryMiddleware).
# A 429 without Retry-After waits the same way.
GOVKZ_RETRY_BACKOFF_BASE = float(_env("GOVKZ_RETRY_BACKOFF_BASE", "2.0"))
GOVKZ_RETRY_BACKOFF_MAX = float(_env("GOVKZ_RETRY_BACKOFF_MAX", "60.0"))
GOVKZ_PUBLISH_FEEDS = True

DOWNLOADER_MIDDLEWARES = {
    # After the cookie middleware (700) has stored a handshake's cookies, before retries (550).
    "crawler.middlewares.AccessMiddleware": 560,
    "crawler.middlewares.RetryAfterMiddleware": 555,
    # Scrapy's retries, with a wait before each: in the stock middleware's place.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
}
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
