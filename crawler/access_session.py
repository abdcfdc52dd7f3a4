"""A k6 session kept between crawl processes, as the site's own web client keeps its session
across page views: what a handshake gave (the k6v1 cookies or the k6v2 headers), for which site
and strategy, when it was obtained and until when it may be sent.

The next crawl of the same site sends its news requests with it instead of asking gov.kz for a
new one; when the site refuses it, the access middleware drops it and shakes hands afresh
(crawler/middlewares.py). The record and its rules are pure; `SessionKeeper` reads and writes
it through the archive (crawler/store_monitor.py, table `access_sessions`), one short-lived
connection per call.

The values are secrets: nothing here puts them in a log line or a repr.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler.errors import StoreError
from crawler.timeutil import parse_iso, utcnow

log = logging.getLogger(__name__)

# The strategies whose session comes from the server (token makes its own, plain needs none).
SESSION_STRATEGIES = ("k6v1", "k6v2")

# How long a session without an expiry of its own (a k6v2 header map, a k6v1 session cookie) is
# sent again. Nobody has published how long gov.kz honours one, so it is short: long enough for
# the daemon's batches of one cycle and for cycles at its minimum interval (10 minutes) to
# share one session, shorter than the gaps of a quiet daemon (hours), after which a fresh
# handshake is what a returning browser would do too. A session the site dropped earlier
# costs one refused request and a new handshake, nothing more.
SESSION_MAX_AGE = timedelta(minutes=30)


@dataclass(frozen=True)
class SessionCookie:
    """One cookie a k6v1 handshake set, with the attributes that decide where and until when
    it is sent."""

    name: str
    value: str = field(repr=False)
    domain: str | None = None
    path: str | None = None
    secure: bool = False
    expires: datetime | None = None

    def set_cookie_header(self) -> str:
        """The cookie as the Set-Cookie header that gave it (its attributes included): the
        form in which the crawl's cookie jar takes it back (crawler/session_jar.py)."""
        parts = [f"{self.name}={self.value}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.path:
            parts.append(f"Path={self.path}")
        if self.expires:
            when = email.utils.format_datetime(self.expires.astimezone(UTC), usegmt=True)
            parts.append(f"Expires={when}")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "domain": self.domain,
                "path": self.path, "secure": self.secure,
                "expires": self.expires.astimezone(UTC).isoformat() if self.expires else None}


def parse_set_cookies(values: Iterable[bytes | str], now: datetime) -> tuple[SessionCookie, ...]:
    """The cookies of a handshake answer's Set-Cookie headers (one cookie per header). A cookie
    that deletes itself (Max-Age <= 0, an Expires in the past) is left out; Max-Age wins over
    Expires (RFC 6265); of two with the same name, domain and path the last one counts."""
    cookies: dict[tuple[str, str | None, str | None], SessionCookie] = {}
    for raw in values:
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        pair, *attributes = text.split(";")
        name, equals, value = pair.partition("=")
        name = name.strip()
        if not equals or not name:
            continue
        attrs: dict[str, str] = {}
        for attribute in attributes:
            key, _, attr_value = attribute.partition("=")
            attrs[key.strip().lower()] = attr_value.strip()
        expires = _cookie_expiry(attrs, now)
        if expires is not None and expires <= now:
            cookies.pop((name, attrs.get("domain") or None, attrs.get("path") or None), None)
            continue
        cookie = SessionCookie(name, value.strip(), domain=attrs.get("domain") or None,
                               path=attrs.get("path") or None, secure="secure" in attrs,
                               expires=expires)
        cookies[(cookie.name, cookie.domain, cookie.path)] = cookie
    return tuple(cookies.values())


def _cookie_expiry(attrs: dict[str, str], now: datetime) -> datetime | None:
    if "max-age" in attrs:
        try:
            return now + timedelta(seconds=int(attrs["max-age"]))
        except (ValueError, OverflowError):
            pass
    if attrs.get("expires"):
        try:
            when = email.utils.parsedate_to_datetime(attrs["expires"])
        except (TypeError, ValueError):
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class StoredSession:
    """What lets a crawl's requests in without a handshake, and whose it is."""

    site: str
    strategy: str
    obtained_at: datetime
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    cookies: tuple[SessionCookie, ...] = ()

    @classmethod
    def obtained(cls, site: str, strategy: str, *, now: datetime,
                 headers: dict[str, str] | None = None,
                 cookies: Iterable[SessionCookie] = ()) -> StoredSession:
        """The session a handshake just gave: it expires with its first cookie that has an
        expiry of its own, else after SESSION_MAX_AGE."""
        cookies = tuple(cookies)
        expiries = [c.expires for c in cookies if c.expires is not None]
        expires = min(expiries) if expiries else now + SESSION_MAX_AGE
        return cls(site.rstrip("/"), strategy, now, expires, dict(headers or {}), cookies)

    def usable(self, site: str, strategy: str, now: datetime) -> bool:
        """Only for the site and strategy it was obtained for, and only before it expires (one
        obtained "later than now", by a clock that went back, is not trusted either)."""
        return (self.site == site.rstrip("/") and self.strategy == strategy
                and self.obtained_at <= now < self.expires_at)

    @property
    def secrets(self) -> str:
        """The cookies and headers as the JSON text the store keeps."""
        return json.dumps({"cookies": [c.to_json() for c in self.cookies],
                           "headers": self.headers}, sort_keys=True)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StoredSession | None:
        """The session of an `access_sessions` row; None for a row it cannot be read from."""
        try:
            data = json.loads(row["secrets"])
            cookies = tuple(
                SessionCookie(str(c["name"]), str(c["value"]), domain=c.get("domain"),
                              path=c.get("path"), secure=bool(c.get("secure")),
                              expires=parse_iso(c.get("expires")))
                for c in data.get("cookies", []))
            headers = {str(k): str(v) for k, v in data.get("headers", {}).items()}
            obtained, expires = parse_iso(row["obtained_at"]), parse_iso(row["expires_at"])
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if obtained is None or expires is None:
            return None
        return cls(str(row["site"]), str(row["strategy"]), obtained, expires, headers, cookies)


class SessionKeeper:
    """The stored session of one site, through the archive at `path`.

    Keeping sessions only saves requests, so a store that cannot be used (locked, read-only,
    missing) costs a handshake, never the crawl: its failures are logged in one line and
    answered as "nothing stored".
    """

    def __init__(self, path: str | Path, site: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.path, self.site, self.clock = Path(path), site.rstrip("/"), clock

    def load(self, strategy: str) -> StoredSession | None:
        """The stored session of `strategy` for this site, if one may be sent now."""
        row = self._call("read the stored access session",
                         lambda monitor: monitor.access_session(self.site, strategy))
        session = StoredSession.from_row(row) if row else None
        if session is None or not session.usable(self.site, strategy, self.clock()):
            return None
        return session

    def save(self, session: StoredSession) -> None:
        self._call("store the access session", lambda monitor: monitor.save_access_session(
            session.site, session.strategy, secrets=session.secrets,
            obtained_at=session.obtained_at, expires_at=session.expires_at))

    def drop(self, session: StoredSession) -> None:
        """Forget `session` (the site refused it), unless another crawl has stored a newer one
        since: that one is not known to be refused."""
        self._call("drop the access session", lambda monitor: monitor.drop_access_session(
            session.site, session.strategy, secrets=session.secrets))

    def _call(self, what: str, action: Callable[[Any], Any]) -> Any:
        from crawler.store import Archive  # imported here: nothing opens a DB at import time

        try:
            archive = Archive.open(self.path)
        except StoreError as exc:
            log.warning("access: cannot %s: %s", what, exc)
            return None
        try:
            return action(archive.monitor)
        except StoreError as exc:
            log.warning("access: cannot %s: %s", what, exc)
            return None
        finally:
            archive.close()
