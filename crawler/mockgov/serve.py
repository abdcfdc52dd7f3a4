"""Serving the mock gov.kz: in a background thread (tests), in twisted.web (the daemon's demo
mode), or from the command line (`python -m crawler.mockgov.serve --port 8081`).

The mock only ever listens on the loopback interface.

Connections: the threaded server answers exactly one request per connection, and says so:
every answer is HTTP/1.1 with a Content-Length and ``Connection: close``, and the server closes
the socket after it. A client (Twisted's connection pool, under Scrapy) therefore never reuses a
socket the server is about to close; without the header it would, and on a busy machine a
request sent down a half-closed socket failed and was retried, so request counts drifted.
A "drop" fault still closes the socket without any answer, always on a fresh connection.

``keep_alive=True`` (the benchmarks; `--keep-alive` on the command line) serves persistent
HTTP/1.1 connections instead, as a real web server in front of gov.kz does: each connection
takes requests until the client closes it or stays quiet for the read timeout. Tests keep the
default, where no request can race a server-side close.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from socketserver import TCPServer, ThreadingMixIn
from types import TracebackType
from typing import IO, Any, cast
from wsgiref.handlers import SimpleHandler
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from crawler.mockgov.app import create_app
from crawler.mockgov.faults import Dialect, DropConnection, Fault, refuse_everything
from crawler.mockgov.site import ACCESS_SCHEMES, PROJECTS_SHAPES, MockSite, RequestLog

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Requests the command-line mock's log keeps (about 1.5 KB each): it serves until Ctrl-C, a
# benchmark's crawler may send it millions, and nothing outside its process reads the log.
SERVE_LOG_KEPT = 10_000


class _Handler(SimpleHandler):
    server_software = "mockgov"
    http_version = "1.1"
    request_handler: WSGIRequestHandler | None = None  # wsgiref's own handler sets it too

    def cleanup_headers(self) -> None:
        super().cleanup_headers()  # adds Content-Length when the app gave none
        headers = self.headers  # type: ignore[attr-defined]  # set by start_response
        requests = self.request_handler
        if getattr(requests, "keep_alive", False) and "Content-Length" in headers:
            return  # the next request may follow on this connection
        # One request per connection, announced, so no client sends a second one on it.
        headers["Connection"] = "close"
        if requests is not None:
            requests.close_connection = True

    def handle_error(self) -> None:
        # An injected dropped connection must not be turned into a 500 answer.
        if isinstance(sys.exc_info()[1], DropConnection):
            raise
        super().handle_error()

    def log_exception(self, exc_info: Any) -> None:
        pass  # quiet: the request log records what happened


class _RequestHandler(WSGIRequestHandler):
    # Bounds a read from a client that connected and went quiet, so stop() cannot wedge on it.
    timeout = 10
    keep_alive = False

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # wsgiref's own handle(), with a handler class that lets DropConnection through.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            self.close_connection = True
            return
        handler = _Handler(self.rfile, cast(IO[bytes], self.wfile), self.get_stderr(),
                           self.get_environ(), multithread=True)
        handler.request_handler = self
        app = cast(WSGIServer, self.server).get_app()
        assert app is not None  # MockServer sets the app before it serves
        try:
            handler.run(app)
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _KeepAliveRequestHandler(_RequestHandler):
    """Persistent connections: requests are answered in turn until the client closes."""

    keep_alive = True
    protocol_version = "HTTP/1.1"  # parse_request() keeps an HTTP/1.1 connection open

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, the body of every answer after
        # the first waits for the client's delayed ACK of the headers (Nagle).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        self.close_connection = True
        while True:
            try:
                super().handle()
            except TimeoutError:
                return  # quiet for the read timeout: close, as servers do
            if self.close_connection or not self.raw_requestline:
                return


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a server a test forgot to stop never keeps the interpreter alive
    block_on_close = False  # MockServer.stop() joins the request threads, with a deadline
    allow_reuse_address = True
    # Every request is a new connection: a burst of them must not overflow the accept queue
    # (the default 5 makes the kernel drop SYNs, which clients resend a second later).
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.active: set[threading.Thread] = set()
        self._active_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self.active.discard(threading.current_thread())

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address), daemon=True,
                                  name=f"mockgov-request:{self.server_port}")
        with self._active_lock:
            self.active.add(thread)
        thread.start()

    def join_requests(self, timeout: float, release: Callable[[], None]) -> bool:
        """Wait until every request thread has finished; True if they all did in time."""
        deadline = time.monotonic() + timeout
        while True:
            with self._active_lock:
                threads = list(self.active)
            if not threads:
                return True
            if time.monotonic() >= deadline:
                return False
            release()  # a hang or latency that began after the last release ends too
            threads[0].join(0.05)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() asks for the host's FQDN, a DNS lookup the mock never needs.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is not the mock's problem


class _Server6(_Server):
    address_family = socket.AF_INET6


class MockServer:
    """A running mock: ``.url``, ``.site``, ``.stop()``; also a context manager."""

    def __init__(self, site: MockSite, host: str = "127.0.0.1", port: int = 0, *,
                 keep_alive: bool = False) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the mock gov.kz listens on loopback only, not {host!r}")
        self.site = site
        server_class = _Server6 if host == "::1" else _Server
        self._server = server_class(("::1" if host == "::1" else "127.0.0.1", port),
                                    _KeepAliveRequestHandler if keep_alive else _RequestHandler)
        self._server.set_app(create_app(site))
        self.host = host
        self.port: int = self._server.server_address[1]
        self.url = (f"http://[::1]:{self.port}" if host == "::1"
                    else f"http://127.0.0.1:{self.port}")
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01},
                                        name=f"mockgov:{self.port}", daemon=True)

    def start(self) -> MockServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, finish the requests in progress, close the port.

        When it returns every request the server accepted has been answered (or dropped) and
        logged, so a test can read ``site.log`` right after the ``with`` block.
        """
        self.site.faults.release()  # end hangs so request threads finish
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        self._server.join_requests(10.0, self.site.faults.release)

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every request in progress has been answered (or dropped) and logged, so
        what a test counts next is only what comes after; True if they all finished in time.

        A request held by a hang that a test has just ended is logged when its thread gets
        to it, which can be after the test's next crawl started."""
        return self._server.join_requests(timeout, self.site.faults.release)

    def __enter__(self) -> MockServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_in_thread(site: MockSite, host: str = "127.0.0.1", port: int = 0, *,
                    keep_alive: bool = False) -> MockServer:
    """Start serving ``site`` in a daemon thread; port 0 picks a free port."""
    return MockServer(site, host, port, keep_alive=keep_alive).start()


def wsgi_resource(site: MockSite, reactor: Any = None) -> Any:
    """The mock as a twisted.web resource (for the daemon's demo mode)."""
    from twisted.web.wsgi import WSGIResource

    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    return WSGIResource(reactor, reactor.getThreadPool(), create_app(site))


# --- command line ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govkz-monitor mock",
        description="Serve a local imitation of gov.kz's news API on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1", choices=LOOPBACK)
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081; 0: any)")
    parser.add_argument("--seeds", type=Path, default=None, metavar="DIR",
                        help="serve the items of the saved pages in DIR (with manifest.toml)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="serve N generated agencies (test-agency-001 ...)")
    parser.add_argument("--items", type=int, default=20,
                        help="items per generated agency (default 20)")
    parser.add_argument("--projects-shape", default=PROJECTS_SHAPES[0], choices=PROJECTS_SHAPES,
                        help="how a news item names its agency in `projects`: list [\"mod\"] "
                        "(default), slug \"mod\", objects [{\"id\": …, \"slug\": \"mod\"}]")
    parser.add_argument("--access", default="plain", choices=ACCESS_SCHEMES,
                        help="access scheme the news API enforces (default plain)")
    parser.add_argument("--handshake-uses", type=int, default=None, metavar="N",
                        help="a k6 handshake expires after N news requests (default never)")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every request")
    parser.add_argument("--keep-alive", action="store_true",
                        help="persistent HTTP/1.1 connections, as a real web server keeps them "
                        "(default: one request per connection, announced with Connection: close)")
    parser.add_argument("--page-base", type=int, default=1, choices=(0, 1),
                        help="number of the list's first page (default 1; 0: page=0 is first)")
    parser.add_argument("--kk-code", default="kk", choices=("kk", "kz"),
                        help="the code of Kazakh (default kk; kz: a request for kk gets Russian)")
    parser.add_argument("--no-graphql-news", action="store_true",
                        help="GraphQL refuses the news query (projectdetails still answers)")
    parser.add_argument("--refuse-all", action="store_true",
                        help="close every connection without an answer (a refusing network)")
    parser.add_argument("--public-site", default=None,
                        help="base URL of links in RSS (default: the mock's own URL)")
    return parser


def build_site(args: argparse.Namespace) -> MockSite:
    options: dict[str, Any] = {"access": args.access, "handshake_uses": args.handshake_uses,
                               "public_site": args.public_site,
                               "projects_shape": args.projects_shape,
                               "log": RequestLog(limit=SERVE_LOG_KEPT),
                               "dialect": Dialect(args.page_base, args.kk_code,
                                                  not args.no_graphql_news)}
    if args.seeds and args.synthetic:
        raise SystemExit("choose --seeds or --synthetic, not both")
    if args.seeds:
        site = MockSite.from_seeds(seed_items(args.seeds), **options)
    elif args.synthetic:
        site = MockSite.synthetic(args.synthetic, args.items, **options)
    else:
        site = MockSite(**options)
    if args.latency_ms:
        site.faults.add(Fault("latency", path="/", times=None, seconds=args.latency_ms / 1000))
    if args.refuse_all:
        site.faults.add(refuse_everything())
    return site


def seed_items(seeds_dir: Path) -> list[Any]:
    """The items of every snapshot the manifest in ``seeds_dir`` lists."""
    from crawler.extract.snapshot import decode_snapshot, extract_snapshot
    from crawler.seeds import load_manifest, seed_files

    manifest = load_manifest(seeds_dir)
    items = []
    for path in seed_files(seeds_dir):
        spec = manifest[path.name]
        text = decode_snapshot(path.read_bytes(), path.name)
        result = extract_snapshot(text, layout=spec.layout, lang=spec.lang, agency=spec.agency,
                                  source=f"snapshot:{path.name}")
        items.extend(result.items)
    return items


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    site = build_site(args)
    with serve_in_thread(site, args.host, args.port, keep_alive=args.keep_alive) as server:
        print(f"mock gov.kz: {server.url} ({len(site.agencies())} agencies, "
              f"access {site.access}); Ctrl-C stops", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
