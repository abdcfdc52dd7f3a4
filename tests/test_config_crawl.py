"""What the site sees follows the configuration: `govkz-monitor crawl` against the mock, with
the contact URL (the User-Agent) and the languages given in the file, then overridden by the
environment, then by the flags. The other settings are shown on the resolved Config and its
Scrapy settings (test_config.py)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import run_cli

from crawler.mockgov import MockSite, serve_in_thread

NEWS = "/api/v1/public/content-manager/news"
FAST = ("-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0")

# Each layer names its own contact URL and languages; the highest layer given must win.
LAYERS = {
    "file": ("https://file.test/contact", ("ru", "kk")),
    "env": ("https://env.test/contact", ("kk",)),
    "flag": ("https://flag.test/contact", ("en",)),
}


@pytest.mark.parametrize("top", list(LAYERS))
def test_the_site_sees_the_resolved_user_agent_and_languages(
    tmp_path: Path, top: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("GOVKZ_")]:
        monkeypatch.delenv(name)  # the developer's own must not take part
    site = MockSite()
    site.add_agency("mod")
    site.publish("mod", title={lang: f"{lang} title" for lang in ("ru", "kk", "en")},
                 body={lang: f"<p>{lang} body</p>" for lang in ("ru", "kk", "en")})
    contact, langs = LAYERS["file"]
    config = tmp_path / "govkz-monitor.toml"
    config.write_text(f'[crawl]\ncontact_url = "{contact}"\nlangs = {list(langs)!r}\n'
                      .replace("'", '"'), encoding="utf-8")
    env: dict[str, str] = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    flags: list[str] = []
    if top in ("env", "flag"):
        contact, langs = LAYERS["env"]
        env |= {"GOVKZ_CONTACT_URL": contact, "GOVKZ_LANGS": ",".join(langs)}
    if top == "flag":
        contact, langs = LAYERS["flag"]
        flags = ["-s", f"GOVKZ_CONTACT_URL={contact}", *(f"--lang={lang}" for lang in langs)]
    with serve_in_thread(site) as server:
        # --config and --data before the command, the rest after it: both positions work.
        result = run_cli("--config", str(config), "--data", str(tmp_path / "data"), "crawl",
                         "--agency", "mod", "--base-url", server.url, *FAST, *flags,
                         env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = site.log.entries()
    assert seen, "the crawl sent nothing"
    assert {entry.headers.get("user-agent") for entry in seen} == {
        f"govkz-monitor/0.1 (+{contact})"}
    lists = Counter(entry.lang for entry in seen if entry.path == NEWS)
    assert set(lists) == set(langs), lists


def test_scrapy_crawl_from_the_repo_root_uses_the_same_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scrapy crawl govkz` (scrapy.cfg -> crawler.settings): GOVKZ_LANGS from the environment
    decides the languages, and Scrapy's own -s GOVKZ_CONTACT_URL reaches the User-Agent."""
    import subprocess
    import sys

    from cli_helpers import ROOT

    site = MockSite()
    site.add_agency("mod")
    site.publish("mod", title={lang: f"{lang} title" for lang in ("ru", "kk", "en")},
                 body={lang: f"<p>{lang} body</p>" for lang in ("ru", "kk", "en")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVKZ_")}
    env |= {"PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "GOVKZ_LANGS": "kk", "GOVKZ_DATA": str(tmp_path / "data")}
    with serve_in_thread(site) as server:
        result = subprocess.run(
            [sys.executable, "-m", "scrapy", "crawl", "govkz", "-a", "agencies=mod",
             "-s", f"GOVKZ_BASE_URL={server.url}", "-s", "GOVKZ_CONTACT_URL=https://s.test/c",
             *FAST, "-s", "LOG_LEVEL=WARNING"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = site.log.entries()
    assert {e.headers.get("user-agent") for e in seen} == {"govkz-monitor/0.1 (+https://s.test/c)"}
    assert {e.lang for e in seen if e.path == NEWS} == {"kk"}
