"""The crawl's Scrapy tuning: what the configuration derives for throughput, and the per-response
work the project settings switch off (see README, Benchmarks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crawler.config import resolve, scrapy_settings

REPO = Path(__file__).resolve().parents[1]


def _settings(**sets: str) -> Any:
    return scrapy_settings(resolve(environ={}, sets=sets))


@pytest.mark.parametrize(("sets", "autothrottle"), [
    ({}, True),  # the real site: politeness as documented
    ({"GOVKZ_DOWNLOAD_DELAY": "2"}, True),
    ({"DOWNLOAD_DELAY": "0"}, False),  # a mirror or the mock: no 1 s start, no target of 1
    ({"GOVKZ_DOWNLOAD_DELAY": "0"}, False),
    ({"DOWNLOAD_DELAY": "0", "AUTOTHROTTLE_ENABLED": "1"}, True),  # asked for: kept
])
def test_autothrottle_follows_the_delay(sets: dict[str, str], autothrottle: bool) -> None:
    assert _settings(**sets).getbool("AUTOTHROTTLE_ENABLED") is autothrottle


@pytest.mark.parametrize(("sets", "per_domain", "total"), [
    ({}, 2, 4),  # the default: 2 to the host, room for a handshake beside them
    ({"GOVKZ_CONCURRENCY": "16"}, 16, 16),  # the global cap no longer holds it back
    ({"GOVKZ_CONCURRENCY": "16", "CONCURRENT_REQUESTS": "8"}, 16, 8),  # -s wins
])
def test_the_global_cap_follows_concurrency(sets: dict[str, str], per_domain: int,
                                            total: int) -> None:
    settings = _settings(**sets)
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == per_domain
    assert settings.getint("CONCURRENT_REQUESTS") == total


@pytest.mark.parametrize(("name", "value"), [
    ("CONCURRENT_ITEMS", 1),
    ("WARN_ON_GENERATOR_RETURN_VALUE", False),
    ("DOWNLOAD_DELAY", 1.0),  # politeness for gov.kz unchanged
    ("CONCURRENT_REQUESTS_PER_DOMAIN", 2),
    ("AUTOTHROTTLE_TARGET_CONCURRENCY", 1.0),
])
def test_project_defaults(name: str, value: object) -> None:
    assert _settings().get(name) == value


@pytest.mark.parametrize(("setting", "component"), [
    ("EXTENSIONS", "scrapy.extensions.remote_control.RemoteControl"),
    ("SPIDER_MIDDLEWARES", "scrapy.spidermiddlewares.depth.DepthMiddleware"),
    ("SPIDER_MIDDLEWARES", "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware"),
    ("SPIDER_MIDDLEWARES", "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware"),
    ("DOWNLOADER_MIDDLEWARES", "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware"),
    ("DOWNLOADER_MIDDLEWARES", "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware"),
    ("DOWNLOADER_MIDDLEWARES", "scrapy.downloadermiddlewares.stats.DownloaderStats"),
])
def test_unused_components_are_left_out(setting: str, component: str) -> None:
    from scrapy.utils.conf import build_component_list

    assert component not in build_component_list(_settings().getwithbase(setting))


@pytest.mark.parametrize(("setting", "component"), [
    # Without it Scrapy's redirect middleware logs a warning in every crawl.
    ("SPIDER_MIDDLEWARES", "scrapy.spidermiddlewares.referer.RefererMiddleware"),
    ("DOWNLOADER_MIDDLEWARES", "scrapy.downloadermiddlewares.redirect.RedirectMiddleware"),
    ("DOWNLOADER_MIDDLEWARES", "scrapy.downloadermiddlewares.cookies.CookiesMiddleware"),
])
def test_components_that_stay(setting: str, component: str) -> None:
    from scrapy.utils.conf import build_component_list

    assert component in build_component_list(_settings().getwithbase(setting))


def test_the_handler_preload_keeps_inspect_and_the_aliases_module_names() -> None:
    # In a child: this test process has imported Scrapy's HTTP handler already.
    code = ("import inspect; stack = inspect.stack; "
            "from crawler.runner import preload_download_handlers; preload_download_handlers(); "
            "from scrapy.core.downloader import contextfactory, tls; "
            "print(inspect.stack is stack, contextfactory.ScrapyClientContextFactory.__module__, "
            "tls.ScrapyClientTLSOptions.__module__)")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "scrapy.core.downloader.contextfactory",
                                   "scrapy.core.downloader.tls"]


def test_a_crawler_does_not_import_the_remote_control_server() -> None:
    # In a child: this test process may have imported aiohttp for other reasons.
    code = ("import sys; from scrapy.utils.reactor import install_reactor; "
            "install_reactor('twisted.internet.asyncioreactor.AsyncioSelectorReactor'); "
            "from scrapy.utils.test import get_crawler; "
            "from crawler.runner import project_settings; "
            "from crawler.spiders.govkz import GovkzSpider; "
            "crawler = get_crawler(GovkzSpider, project_settings().copy_to_dict()); "
            "print(sorted(type(e).__name__ for e in crawler.extensions.middlewares)); "
            "print('aiohttp' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    extensions, imported = done.stdout.splitlines()
    assert "CoreStats" in extensions and "LogCount" in extensions  # the summary needs these
    assert "RemoteControl" not in extensions
    assert imported == "False"
