"""A crawl of a site that cannot be reached: one-line errors and the summary, no traceback.

Scrapy logs some download errors with their traceback (the robots.txt middleware does for every
one); crawler/logsetup.py keeps the line and drops the traceback of such network failures below
DEBUG, and leaves every other exception's traceback alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cli_helpers import run_cli
from net_helpers import closed_port
from scrapy.exceptions import CannotResolveHostError, DownloadConnectionRefusedError
from twisted.internet.error import ConnectionRefusedError as TxConnectionRefusedError

from crawler import logsetup

# One retry, so the retry middleware's give-up log is part of the output too; its wait short.
FAST = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0", "-s", "RETRY_TIMES=1",
        "-s", "GOVKZ_RETRY_BACKOFF_BASE=0.05"]


def offline_crawl(data: Path, *options: str, json_out: bool = False) -> tuple[int, str, str]:
    """`govkz-monitor OPTIONS crawl` of a port that refuses connections."""
    with closed_port() as port:
        result = run_cli(*options, "crawl", "--agency", "mod", "--lang", "en",
                         "--base-url", f"http://127.0.0.1:{port}", "--data", str(data), *FAST,
                         *(["--json"] if json_out else []), timeout=120)
    return result.returncode, result.stdout, result.stderr


def test_offline_crawl_prints_errors_and_summary_without_a_traceback(tmp_path: Path) -> None:
    code, out, err = offline_crawl(tmp_path)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert "mod/en:" in out and "ERROR:" in out and "total:" in out  # the summary
    assert "Connection was refused" in out
    assert "Error downloading" in err  # Scrapy's line stays; only its traceback went


def test_offline_crawl_json_is_the_summary_alone(tmp_path: Path) -> None:
    code, out, err = offline_crawl(tmp_path, "-v", json_out=True)
    assert code == 1, err
    assert "Traceback" not in out + err
    summary = json.loads(out)
    assert summary["totals"]["errors"] >= 1


def test_offline_crawl_keeps_the_traceback_at_debug(tmp_path: Path) -> None:
    code, out, err = offline_crawl(tmp_path, "--log-level", "DEBUG")
    assert code == 1
    assert "Traceback" in err and "DownloadConnectionRefusedError" in err


# --- the formatter on its own -----------------------------------------------------------------


def _log_exception(exc: BaseException, cause: BaseException | None = None) -> None:
    try:
        raise exc from cause
    except BaseException:
        logging.getLogger("scrapy.downloadermiddlewares.robotstxt").error(
            "Error downloading <GET http://127.0.0.1:9/>: %s", exc, exc_info=True
        )


def _network_failure() -> None:
    _log_exception(DownloadConnectionRefusedError("Connection was refused"),
                   TxConnectionRefusedError("111"))


def _bug() -> None:
    _log_exception(ZeroDivisionError("division by zero"))


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize(("verbosity", "level", "network_traceback"), [
    (0, None, False), (1, None, False), (0, "INFO", False), (2, None, True), (0, "DEBUG", True),
])
def test_only_network_failures_lose_their_traceback(
    capsys: pytest.CaptureFixture[str], verbosity: int, level: str | None,
    network_traceback: bool,
) -> None:
    logsetup.configure(verbosity, level)
    _network_failure()
    network = capsys.readouterr().err
    assert "Error downloading" in network
    assert ("Traceback" in network) is network_traceback
    _bug()
    bug = capsys.readouterr().err
    assert "Traceback" in bug and "ZeroDivisionError" in bug  # a bug always shows it


def test_network_failure_types() -> None:
    for exc in (DownloadConnectionRefusedError("x"), CannotResolveHostError("x"),
                TxConnectionRefusedError("x")):
        assert logsetup.is_network_failure((type(exc), exc, None))
    for exc in (OSError("disk full"), ValueError("x")):
        assert not logsetup.is_network_failure((type(exc), exc, None))
    assert not logsetup.is_network_failure(None)
