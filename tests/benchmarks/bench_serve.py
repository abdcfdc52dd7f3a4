"""Serving one 48 KB feed: the embedded twisted.web server beside Debian's nginx
(gzip_static on) serving the same directory, under the same bounded keep-alive load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from crawler.feeds import write_if_changed
from tests.benchmarks import datagen
from tests.benchmarks.bench_feeds import lxml_atom
from tests.benchmarks.harness import Bench, Result, child_env, group, side_by_side

FEED = "bench.atom"
FEED_BYTES = 48 * 1024
NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    types {{ application/atom+xml atom; }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /feeds/ {{
            alias {feeds}/;
            gzip_static on;
        }}
    }}
}}
"""


def make_feed(feeds: Path) -> Path:
    """An Atom feed of about 48 KB, with its precompressed .gz beside it."""
    rows: list[dict] = []
    data = b""
    for values in datagen.rows(600, 1):
        rows.append(dict(zip(datagen.COLUMNS, values, strict=True)))
        data = lxml_atom("bench", "bench", rows, {})
        if len(data) >= FEED_BYTES:
            break
    path = feeds / FEED
    # As the publisher writes it: the .gz beside it carries its mtime, so a server knows the
    # copy is current (one written later, as before, is a stale copy to the embedded server).
    write_if_changed(path, data)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded(feeds: Path) -> Iterator[str]:
    child = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.serve_child", str(feeds)],
                             stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}/feeds/{FEED}"
    finally:
        child.terminate()
        child.wait(10)


@contextmanager
def nginx(binary: str, feeds: Path, tmp: Path) -> Iterator[str]:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, feeds=feeds))
    child = subprocess.Popen([binary, "-p", str(tmp), "-c", str(conf)],
                             stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/feeds/{FEED}"
        _wait_listening(port, child)
        yield url
    finally:
        child.terminate()
        child.wait(10)


def _wait_listening(port: int, child: subprocess.Popen) -> None:
    """Until nginx accepts connections (bounded: 10 s), or fail when it exited."""
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            try:
                child.wait(0.05)  # returns before the timeout only when nginx has exited
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"nginx exited: {child.stderr.read() if child.stderr else ''}") \
                from None
    raise RuntimeError("nginx did not start listening")


def load(bench: Bench, url: str) -> dict:
    sizes = bench.sizes
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.loadgen", url,
                           str(sizes.serve_requests), str(sizes.serve_clients)],
                          capture_output=True, text=True, env=child_env(), timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()[-300:]}")
    result = json.loads(done.stdout)
    if result["ok"] != result["requests"]:
        raise RuntimeError(f"{url}: {result['ok']} of {result['requests']} answered 200")
    return result


@group("serve", ("serve_feed",))
def serve(bench: Bench) -> Iterable[Result]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                       else None)
    if binary is None:
        yield Result("serve_feed", None, None, "req/s", note="n/a: nginx is not installed "
                     "(apt-get install -y nginx)")
        return
    root = bench.dir("serve")
    # nginx's workers may run as another user: they must be able to read the files.
    for path in (bench.tmp, root):
        path.chmod(0o755)
    feeds = root / "feeds"
    size = make_feed(feeds).stat().st_size
    zipped: dict[str, int] = {}
    with embedded(feeds) as ours_url, nginx(binary, feeds, bench.dir("serve/nginx")) as url:
        def project() -> float:
            result = load(bench, ours_url)
            zipped["project"] = result["gzip"]
            return float(result["rps"])

        def baseline() -> float:
            result = load(bench, url)
            zipped["baseline"] = result["gzip"]
            return float(result["rps"])

        ours, theirs = side_by_side(project, baseline, bench.sizes.repeats)
    yield Result("serve_feed", ours, theirs, "req/s", target=0.15, op=">=", note=(
        f"{size / 1024:.0f} KB feed, {bench.sizes.serve_requests} requests over "
        f"{bench.sizes.serve_clients} keep-alive clients, Accept-Encoding: gzip; nginx 1 worker, "
        f"gzip_static on; gzipped answers: project {zipped['project']}, "
        f"nginx {zipped['baseline']}"))
