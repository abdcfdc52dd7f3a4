"""Replay saved gov.kz pages (seeds/) through Scrapy's downloader (file:// URLs).

The items go through the same pipelines as the live spider's, so a replay fills the same archive
and feeds. Usage: `govkz-monitor replay [FILES…]` or `scrapy crawl replay -a files=a.txt,b.txt`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.errors import SnapshotError
from crawler.extract.snapshot import decode_snapshot, detect_layout, extract_snapshot
from crawler.failures import failed_request
from crawler.items import NewsPage
from crawler.problems import ProblemKind
from crawler.seeds import SnapshotSpec, load_manifest, seed_files, spec_for
from crawler.summary import summary_for


def plan_replay(
    files: list[Path] | None, seeds_dir: Path
) -> list[tuple[Path, SnapshotSpec | None]]:
    """The files to replay with their manifest entries (None: not described in the manifest)."""
    manifest = load_manifest(seeds_dir) if (seeds_dir / "manifest.toml").exists() else {}
    paths = files if files else seed_files(seeds_dir)
    return [(path, spec_for(path, manifest)) for path in paths]


class ReplaySpider(scrapy.Spider):
    name = "replay"
    # Local files: no robots.txt, no throttling, no retries.
    custom_settings = {
        "ROBOTSTXT_OBEY": False,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0,
        "RETRY_ENABLED": False,
        "CONCURRENT_REQUESTS": 8,
    }

    def __init__(
        self,
        files: str | list[str] | None = None,
        seeds: str | None = None,
        lang: str = "en",
        agency: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(files, str):  # `-a files=a.txt,b.txt` on Scrapy's command line
            files = [f for f in files.split(",") if f]
        self.files = [Path(f) for f in files or []]
        self.seeds = seeds
        self.lang = lang
        self.agency = agency
        self.target = ",".join(str(f) for f in self.files) or "seeds"

    async def start(self) -> AsyncIterator[Any]:
        seeds_dir = Path(self.seeds or self.settings.get("GOVKZ_SEEDS"))
        for path, spec in plan_replay(self.files, seeds_dir):
            yield scrapy.Request(
                path.resolve().as_uri(),
                callback=self.parse_snapshot,
                errback=self.snapshot_unreadable,
                cb_kwargs={"name": path.name, "spec": spec},
                dont_filter=True,
            )

    def parse_snapshot(self, response: Response, name: str, spec: SnapshotSpec | None) -> Any:
        target = summary_for(self.crawler).target(name)
        try:
            text = decode_snapshot(response.body, name)
            layout = spec.layout if spec else detect_layout(text)
            if layout is None:
                raise SnapshotError(name, "unknown layout (none of the three known page shapes)")
            result = extract_snapshot(
                text,
                layout=layout,
                lang=spec.lang if spec else self.lang,
                agency=(spec.agency if spec else None) or self.agency,
                source=f"snapshot:{name}",
                url=response.url,  # the rejects' URL: the pipelines count them under the file
            )
        except SnapshotError as exc:
            target.add(ProblemKind.LAYOUT_CHANGED, exc.reason, response.url)
            return
        # One batch per file: stored in one transaction, rejects counted by the pipelines.
        yield NewsPage(list(result.items), list(result.rejects))

    def snapshot_unreadable(self, failure: Failure) -> None:
        request = failed_request(failure)
        summary_for(self.crawler).target(request.cb_kwargs["name"]).add(
            ProblemKind.HTTP_ERROR, f"cannot read: {failure.getErrorMessage()}", request.url,
        )

    def problem_target(self, request: scrapy.Request) -> str:
        """The seed file an unexpected exception is charged to (crawler/contain.py)."""
        return str(request.cb_kwargs.get("name") or "crawl")
