"""Scrapy settings for govkz-monitor: the static ones (middlewares, pipelines, reactor, ...).

What the operator configures (GOVKZ_DATA, GOVKZ_BASE_URL, the User-Agent's contact URL,
DOWNLOAD_DELAY, ...) is not written here: crawler/config.py resolves it (defaults < file <
environment < flags) and derives those settings from it (`setting_values`). The CLI builds a
crawl's Settings with `crawler.config.scrapy_settings(config)`; for `scrapy crawl govkz` from the
repository root (scrapy.cfg points here) the last lines of this module add the values of the same
resolution (defaults < file < environment), and Scrapy's own `-s` comes on top of them.
Nothing here opens a database or a socket, and nothing here reads the environment.
"""

from __future__ import annotations

import os

from scrapy.settings import default_settings as _scrapy_defaults

from crawler.config import current, setting_values

BOT_NAME = "govkz_monitor"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# Process plumbing for a library, not configuration: Scrapy's cookie middleware splits domains
# with tldextract, which on first use downloads the Public Suffix List from the internet (and
# logs a traceback where it cannot). The crawler talks to one host; the list bundled with
# tldextract is enough, so it never fetches anything else.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


# --- Politeness (gov.kz publishes no robots.txt or rate limits: be conservative) ----------------
# USER_AGENT (naming GOVKZ_CONTACT_URL), DOWNLOAD_DELAY and CONCURRENT_REQUESTS_PER_DOMAIN come
# from the configuration (crawler/config.py).
ROBOTSTXT_OBEY = True
# CONCURRENT_REQUESTS follows the configured concurrency too (at least 4; crawler/config.py).
# +-20%: requests do not arrive on a fixed beat. Not Scrapy's +-50%: its downloader draws the
# delay again each time it wakes up to send, and waits on while the new draw is longer than the
# time gone by, so the mean gap is the running maximum of draws: 1.22 x DOWNLOAD_DELAY at +-50%
# (measured: 32 requests at 1 s took 37.8 s against the mock), 1.09 x at +-20%. The configured
# delay is what gov.kz is promised; 22% slower than that buys nothing.
DOWNLOAD_DELAY_JITTER = 0.2
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
# No control ports: a crawl is a short-lived process the daemon supervises from outside. The
# remote-control extension is left out of the base list rather than disabled in EXTENSIONS:
# disabling it by name makes Scrapy import it to compare names, and with it aiohttp (0.2 s of
# CPU in every crawl process, for a server that is never started).
REMOTE_CONTROL_ENABLED = False
EXTENSIONS_BASE = {name: order for name, order in _scrapy_defaults.EXTENSIONS_BASE.items()
                   if not name.endswith(".RemoteControl")}

# --- Per-response costs that buy nothing here --------------------------------------------------
# Scrapy starts CONCURRENT_ITEMS asyncio tasks for the output of every response (100 by
# default: 100 tasks for a page of 5 items). The pipelines are synchronous, so items never
# overlap anyway; one worker also keeps a page's items, rejects and walk mark in order.
CONCURRENT_ITEMS = 1
# Scrapy re-reads and parses the source of a generator callback on every response to warn about
# `return value` in it (its cache is keyed by the bound method, new for each request); the
# spider's callbacks are covered by the tests instead.
WARN_ON_GENERATOR_RETURN_VALUE = False

SPIDER_MIDDLEWARES = {
    # Nearest the spider, so it sees a callback's exception first (crawler/contain.py).
    "crawler.contain.UnexpectedErrorsMiddleware": 950,
    # Each wraps the output of every response in another async generator for bookkeeping the
    # spider does not use: it builds its own URLs and its walks are bounded by
    # GOVKZ_MAX_PAGES, not by link depth (about 5% of a quiet crawl's CPU between them).
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    # A development aid that warns about response.meta copied into new requests; the spider
    # builds every request's meta itself. (RefererMiddleware stays: without it Scrapy's
    # redirect middleware logs a warning in every crawl.)
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
ITEM_PIPELINES = {
    "crawler.pipelines.ValidateItemPipeline": 100,
    "crawler.pipelines.ArchivePipeline": 500,
    "crawler.pipelines.FeedsPipeline": 900,
}


# --- Live crawling of gov.kz (spider "govkz") ------------------------------------------------
# GOVKZ_ACCESS, GOVKZ_PAGE_SIZE, GOVKZ_BACKFILL_PAGES, GOVKZ_MAX_PAGES, GOVKZ_LANGS, the retry
# waits (GOVKZ_RETRY_BACKOFF_BASE, GOVKZ_RETRY_BACKOFF_MAX, GOVKZ_RETRY_AFTER_MAX) and the
# agencies come from the configuration (crawler/config.py); these are not configured:
GOVKZ_RETRY_AFTER_TIMES = 3  # retries of a 429 (RETRY_TIMES counts the 5xx ones)
GOVKZ_PUBLISH_FEEDS = True  # False for a crawl that must not write feeds (agencies --refresh)
GOVKZ_ACCESS_FIRST = ""  # set per crawl: the strategy that worked last time, tried first

DOWNLOADER_MIDDLEWARES = {
    # After the cookie middleware (700) has stored a handshake's cookies, before retries (550).
    "crawler.middlewares.AccessMiddleware": 560,
    # Before the access middleware: a news request is put in the site's dialect (page base,
    # Kazakh code: crawler/siteprobe.py), probed once per site, then let in.
    "crawler.siteprobe.DialectMiddleware": 540,
    "crawler.middlewares.RetryAfterMiddleware": 555,
    # Scrapy's retries, with a wait before each: in the stock middleware's place.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    # Every downloader middleware is two more calls on every request and response; Scrapy's
    # byte counters also rebuild each request's raw bytes (about 2% of a quiet crawl's CPU in a
    # py-spy profile). None of these has work here: no site asks for HTTP auth, JSON and XML
    # answers carry no <meta refresh>, and Scrapy's byte and status counters are read by nobody
    # (the crawl summary counts per target; see crawler/summary.py).
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
}
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# `scrapy crawl -s GOVKZ_CONTACT_URL=...`: the User-Agent follows (crawler/config.py).
ADDONS = {"crawler.config.UserAgentAddon": 0}

# --- What the configuration decides (crawler/config.py) ---------------------------------------
# The process's resolved configuration: the CLI's, or under `scrapy crawl` defaults < file <
# environment (Scrapy's -s overrides these as it overrides any project setting).
globals().update(setting_values(current()))
