"""--log-file / GOVKZ_LOG_FILE: resolved with the rest of the configuration, and the log it
writes (the same records as stderr, with tracebacks)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from crawler import logsetup
from crawler.cli import main
from crawler.config import resolve
from crawler.errors import ConfigError

# Every test here configures the root logger: tests/conftest.py's root_logging puts it back.
pytestmark = pytest.mark.usefixtures("root_logging")


@pytest.mark.parametrize(
    ("environ", "sets", "flag", "expected"),
    [
        ({}, [], None, None),
        ({"GOVKZ_LOG_FILE": "env.log"}, [], None, Path("env.log")),
        ({"GOVKZ_LOG_FILE": "env.log"}, ["GOVKZ_LOG_FILE=set.log"], None, Path("set.log")),
        ({"GOVKZ_LOG_FILE": "env.log"}, ["GOVKZ_LOG_FILE=set.log"], "flag.log", Path("flag.log")),
    ],
)
def test_the_log_file_is_resolved_like_the_log_level(
    tmp_path: Path, environ: dict[str, str], sets: list[str], flag: str | None,
    expected: Path | None,
) -> None:
    config = resolve(config_file=_empty(tmp_path), environ=environ, sets=sets, log_file=flag)
    assert config.log_file == expected


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_log_file_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="GOVKZ_LOG_FILE"):
        resolve(environ={"GOVKZ_LOG_FILE": "x"}, sets=[f"GOVKZ_LOG_FILE={value}"])


def test_the_log_file_gets_warnings_with_their_tracebacks(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "govkz.log"
    logsetup.configure(0, log_file=log_file)
    log = logging.getLogger("scheduler.daemon")
    log.warning("mod/en: FAILED: HTTP 500")
    log.debug("not at the default level")
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        log.exception("crawl supervision failed")
    logging.getLogger("scrapy.core").info("third-party INFO stays below the threshold")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    assert "WARNING scheduler.daemon: mod/en: FAILED: HTTP 500" in text
    assert "RuntimeError: a bug" in text and "Traceback" in text
    assert "not at the default level" not in text and "third-party" not in text
    logsetup.configure(0, log_file=log_file)  # configured again: appends, one handler
    logging.getLogger("crawler").warning("second")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert log_file.read_text(encoding="utf-8").startswith(text)
    assert sum(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers) == 1


def test_a_log_file_that_cannot_be_opened_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    code = main(["--config", str(_empty(tmp_path)), "--log-file", str(blocker / "sub.log"),
                 "status", "--data", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("govkz-monitor: error: --log-file ")


def _empty(tmp_path: Path) -> Path:
    config = tmp_path / "empty.toml"
    config.write_text("", encoding="utf-8")
    return config
