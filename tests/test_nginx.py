"""Debian's nginx serving the feeds directory as the README's snippet configures it
(`gzip_static on`): 200, 304 on If-None-Match and If-Modified-Since, the writer's .gz sent as
it is to gzip clients, the same Last-Modified as the embedded server, hidden files refused.

nginx runs as a child process with a temporary configuration on 127.0.0.1; skipped with a
reason where it is not installed (.ci/run installs it).
"""

from __future__ import annotations

import gzip
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from cli_helpers import ROOT
from test_feeds import FakeArchive, dataset

from crawler.agencies import AgencyRegistry
from crawler.feeds import INDEX_KEY, gz_path, write_feeds

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed "
                                "(apt-get install nginx; .ci/run does)")
START = 10.0  # seconds nginx may take to listen
FEED = "mod/en.atom"

README_ROOT = "/srv/govkz-monitor/data/feeds/"  # where the README's snippet has the feeds
# The README's snippet, as it is, in a server of a configuration of the test's own.
CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
{snippet}
    }}
}}
"""


def readme_snippet() -> str:
    """The ```nginx block of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^```nginx\n(.*?)^```", text, re.S | re.M)
    assert found, "the README has no nginx snippet"
    assert README_ROOT in found.group(1)
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, child: subprocess.Popen[bytes], log: Path) -> None:
    """Until nginx accepts a connection; fail at once when it exits, or after START."""
    deadline = time.monotonic() + START
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            try:
                child.wait(0.05)  # returns before the timeout only when nginx exited
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"nginx exited ({child.returncode}): {log.read_text(errors='replace')}")
    pytest.fail("nginx did not start listening")


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nginx-data") / "feeds"
    write_feeds(FakeArchive(dataset()), out, registry=AgencyRegistry.load())
    return out


@pytest.fixture(scope="module")
def nginx(feeds: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    # As root, nginx's workers would run as nobody, who cannot read pytest's 0700 directories.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    snippet = readme_snippet().replace(README_ROOT, f"{feeds}/")
    conf.write_text(CONFIG.format(user=user, tmp=tmp, port=port, snippet=snippet),
                    encoding="utf-8")
    assert NGINX is not None
    # -e: the log for before the configuration is read (else the system's /var/log/nginx).
    child = subprocess.Popen([NGINX, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, child, tmp / "error.log")
        yield port
    finally:
        child.terminate()  # SIGTERM: nginx's fast shutdown, workers included
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


@pytest.fixture(scope="module")
def embedded(feeds: Path) -> Iterator[int]:
    """The embedded server on the same directory, in a child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.serve_child", str(feeds)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip().isdigit(), f"the embedded server did not start ({child.poll()})"
        yield int(line)
    finally:
        child.terminate()
        child.wait(30)


def get(port: int, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("path", "name", "media_type"), [
    (f"/feeds/{FEED}", FEED, "application/atom+xml"),
    ("/feeds/mod/en.rss", "mod/en.rss", "application/rss+xml"),
    ("/feeds/all/ru.json", "all/ru.json", "application/feed+json"),
    ("/feeds/index.opml", "index.opml", "text/x-opml"),
    ("/opml", "index.opml", "text/x-opml"),
    ("/feeds/index.html", "index.html", "text/html"),
])  # fmt: skip
def test_nginx_serves_the_feed_files(nginx: int, feeds: Path, path: str, name: str,
                                     media_type: str) -> None:
    status, headers, body = get(nginx, path)
    assert status == 200
    assert body == (feeds / name).read_bytes()
    assert "content-encoding" not in headers
    assert headers["last-modified"] == formatdate((feeds / name).stat().st_mtime, usegmt=True)
    assert headers["etag"]
    assert headers["content-type"].split(";")[0] == media_type
    assert headers["content-type"].endswith("charset=utf-8")
    assert headers["cache-control"] == "public, max-age=300"


@pytest.mark.parametrize("accept", [{}, {"Accept-Encoding": "gzip"}])
def test_nginx_answers_304_to_its_validators(nginx: int, accept: dict[str, str]) -> None:
    _, headers, _ = get(nginx, f"/feeds/{FEED}", accept)
    for validator in ({"If-None-Match": headers["etag"]},
                      {"If-Modified-Since": headers["last-modified"]}):  # fmt: skip
        status, _, body = get(nginx, f"/feeds/{FEED}", {**accept, **validator})
        assert (status, body) == (304, b"")


def test_nginx_sends_the_writers_gz_to_gzip_clients(nginx: int, feeds: Path) -> None:
    _, plain, _ = get(nginx, f"/feeds/{FEED}")
    status, headers, body = get(nginx, f"/feeds/{FEED}", {"Accept-Encoding": "gzip"})
    assert (status, headers["content-encoding"]) == (200, "gzip")
    assert body == gz_path(feeds / FEED).read_bytes()
    assert gzip.decompress(body) == (feeds / FEED).read_bytes()
    assert "Accept-Encoding" in headers["vary"]
    # The copy carries the feed's mtime: both variants have one Last-Modified.
    assert headers["last-modified"] == plain["last-modified"]


def test_nginx_and_the_embedded_server_agree(nginx: int, embedded: int) -> None:
    for accept in ({}, {"Accept-Encoding": "gzip"}):
        ours = get(embedded, f"/feeds/{FEED}", accept)
        theirs = get(nginx, f"/feeds/{FEED}", accept)
        assert ours[0] == theirs[0] == 200
        assert ours[2] == theirs[2]  # the same bytes, the .gz copy included
        assert ours[1]["last-modified"] == theirs[1]["last-modified"]
        assert ours[1].get("content-encoding") == theirs[1].get("content-encoding")


def test_nginx_refuses_hidden_files(nginx: int, feeds: Path) -> None:
    assert (feeds / INDEX_KEY).exists()
    assert get(nginx, f"/feeds/{INDEX_KEY}")[0] == 404
