"""A bounded HTTP load generator, run as a child process: CLIENTS processes, each one keep-alive
connection sending REQUESTS/CLIENTS sequential GETs (Accept-Encoding: gzip), every answer read
in full. Prints {"requests", "seconds", "rps", "ok", "gzip"} as JSON.

    python -m tests.benchmarks.loadgen URL REQUESTS CLIENTS
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10.0  # seconds a read may wait: a stuck server fails the run instead of hanging it


def _read_answer(sock: socket.socket, buffer: bytearray) -> tuple[int, bool]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    buffer[:] = rest
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            while b"\r\n" not in buffer:
                buffer += sock.recv(65536)
            size_line, _, _ = bytes(buffer).partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            need = len(size_line) + 2 + size + 2
            while len(buffer) < need:
                buffer += sock.recv(65536)
            del buffer[:need]
            if size == 0:
                break
    else:
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            buffer += chunk
        del buffer[:length]
    return status, headers.get("content-encoding") == "gzip"


def client(url: str, count: int, ready: Any, out: Any) -> None:
    parts = urlsplit(url)
    request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               "Accept-Encoding: gzip\r\nUser-Agent: bench\r\n\r\n").encode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
    ok = gz = 0
    buffer = bytearray()
    ready.wait(TIMEOUT)  # every client connected: the clock starts now
    for _ in range(count):
        sock.sendall(request)
        status, zipped = _read_answer(sock, buffer)
        ok += status == 200
        gz += zipped
    sock.close()
    out.put((ok, gz))


def main(argv: list[str]) -> int:
    url, total, clients = argv[0], int(argv[1]), int(argv[2])
    ready = multiprocessing.Barrier(clients + 1)
    out: Any = multiprocessing.Queue()
    each = max(1, total // clients)
    workers = [multiprocessing.Process(target=client, args=(url, each, ready, out))
               for _ in range(clients)]
    for worker in workers:
        worker.start()
    ready.wait(TIMEOUT)
    began = time.perf_counter()
    results = [out.get(timeout=300) for _ in workers]
    seconds = time.perf_counter() - began
    for worker in workers:
        worker.join(TIMEOUT)
    requests = each * clients
    print(json.dumps({"requests": requests, "seconds": seconds, "rps": requests / seconds,
                      "ok": sum(r[0] for r in results), "gzip": sum(r[1] for r in results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
