"""Fixtures several test modules share. Helpers they share are in tests/*_helpers.py.

The helpers behind the reactor and browser fixtures are imported when a test asks for one, so
that loading this file imports neither the web server nor Twisted for every test module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from store_helpers import memory_archive

if TYPE_CHECKING:
    from browser_helpers import DevTools
    from twisted.internet.selectreactor import SelectReactor

    from crawler.store import Archive


@pytest.fixture
def archive() -> Iterator[Archive]:
    """A migrated, empty in-memory archive, closed after the test."""
    with memory_archive() as store:
        yield store


@pytest.fixture(scope="module")
def reactor() -> Iterator[SelectReactor]:
    """This module's own reactor running in a thread (see web_helpers.private_reactor)."""
    from web_helpers import private_reactor

    with private_reactor() as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """One headless Chromium for the module (modules using it carry browser_helpers'
    needs_chromium mark)."""
    from browser_helpers import DevTools

    devtools = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield devtools
    finally:
        devtools.close()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was: its handlers (closing those the test added) and its
    level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
