"""The twisted.web server of scheduler/server.py on 127.0.0.1, driven from the test thread.

Every call into the reactor goes through blockingCallFromThread and every HTTP request waits on
its reply, so nothing here waits on time.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.threads import blockingCallFromThread
from twisted.web.server import Site

from scheduler.server import listen


@contextmanager
def private_reactor() -> Iterator[SelectReactor]:
    """A reactor of its own (not the global one) running in a thread: a module using it and one
    that runs and stops the global reactor work in any order in one session."""
    reactor = SelectReactor()
    started = threading.Event()
    reactor.callWhenRunning(started.set)
    thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                              daemon=True)
    thread.start()
    assert started.wait(30), "the reactor did not start"
    try:
        yield reactor
    finally:
        reactor.callFromThread(reactor.stop)
        thread.join(30)


@contextmanager
def serving(reactor: Any, site: Site) -> Iterator[int]:
    """Listen with `site` on a free 127.0.0.1 port of `reactor` (running in another thread);
    yields the port number, stops listening after."""
    site.reactor = reactor  # connection timeouts on the same reactor as the listening port
    port = blockingCallFromThread(reactor, lambda: listen(site, "127.0.0.1", 0, reactor=reactor))
    address = port.getHost()
    assert isinstance(address, IPv4Address), address
    try:
        yield address.port
    finally:
        blockingCallFromThread(reactor, port.stopListening)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def read(response: http.client.HTTPResponse) -> Reply:
    return Reply(response.status, response.headers, response.read())


def fetch(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None
          ) -> Reply:
    """One request on a connection of its own, closed after the reply."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        return read(conn.getresponse())
    finally:
        conn.close()


@dataclass
class NoArchive:
    """A status provider with nothing behind it: no agencies, always healthy."""

    def agencies_status(self) -> list:
        return []

    def health(self) -> tuple[bool, str]:
        return True, "ok"
