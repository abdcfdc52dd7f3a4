"""Each default is written once, in crawler/config.py. Where another module still carries a
fallback for a configured setting (`settings.getfloat("GOVKZ_RETRY_AFTER_MAX", 120.0)`, a
keyword default of a helper), it must agree with the configuration's: the bug of the issue was
defaults that disagreed (backfill 3 in one place, 2 in the others)."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT

import crawler.settings as static
from crawler.config import BY_NAME, default

GETTERS = {"get", "getint", "getfloat", "getbool", "getlist"}


def _fallbacks(path: Path) -> list[tuple[int, str, Any]]:
    """(line, NAME, fallback) of every `<x>.get*("GOVKZ_NAME", <literal>)` in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in GETTERS and len(node.args) == 2):
            continue
        name, fallback = node.args
        if isinstance(name, ast.Constant) and str(name.value).startswith("GOVKZ_"):
            try:
                value = ast.literal_eval(fallback)
            except ValueError:
                continue
            found.append((node.lineno, str(name.value), value))
    return found


def _expected(name: str) -> Any:
    """What the settings carry for NAME when nothing is configured."""
    key = BY_NAME.get(name)
    if key is not None:
        value = default(key.dotted)
        return ",".join(value) if isinstance(value, tuple) else value
    return getattr(static, name)  # a static setting of crawler/settings.py


MODULES = sorted(p for d in ("crawler", "scheduler") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_settings_fallback_agrees_with_the_configuration(path: Path) -> None:
    wrong = [f"{path.name}:{line}: {name} falls back to {value!r}, the default is "
             f"{_expected(name)!r}" for line, name, value in _fallbacks(path)
             if value != _expected(name)]
    assert not wrong, "\n".join(wrong)


def _keyword_defaults() -> list[tuple[str, Callable[..., Any], str, str]]:
    from crawler import feeds, middlewares
    from scheduler import server

    return [
        ("backoff_delay base", middlewares.backoff_delay, "base", "crawl.retry_backoff_base"),
        ("backoff_delay cap", middlewares.backoff_delay, "cap", "crawl.retry_backoff_max"),
        ("retry_delay base", middlewares.retry_delay, "base", "crawl.retry_backoff_base"),
        ("retry_delay cap", middlewares.retry_delay, "cap", "crawl.retry_backoff_max"),
        ("retry_delay retry_after_cap", middlewares.retry_delay, "retry_after_cap",
         "crawl.retry_after_max"),
        ("build_site cache_max_age", server.build_site, "cache_max_age",
         "server.cache_max_age"),
        ("listen host", server.listen, "host", "server.bind"),
        ("listen port", server.listen, "port", "server.port"),
        ("write_feeds base_url", feeds.write_feeds, "base_url", "crawl.public_url"),
        ("write_feeds limit", feeds.write_feeds, "limit", "crawl.feed_limit"),
    ]


@pytest.mark.parametrize(("what", "function", "parameter", "dotted"), _keyword_defaults(),
                         ids=[case[0].replace(" ", ".") for case in _keyword_defaults()])
def test_a_helpers_keyword_default_agrees_with_the_configuration(
    what: str, function: Callable[..., Any], parameter: str, dotted: str
) -> None:
    params = inspect.signature(function).parameters
    if parameter not in params or params[parameter].default is inspect.Parameter.empty:
        return  # no default any more: nothing to disagree
    assert params[parameter].default == default(dotted), what


def test_the_feeds_default_public_url_is_the_configurations() -> None:
    from crawler import feeds

    assert getattr(feeds, "DEFAULT_PUBLIC_URL", default("crawl.public_url")) == default(
        "crawl.public_url")
