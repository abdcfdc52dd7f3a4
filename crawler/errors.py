"""Named errors. The CLI turns each into one line for the user; nothing else catches broadly."""

from __future__ import annotations


class GovkzError(Exception):
    """Base of every error this project raises on purpose."""


class SnapshotError(GovkzError):
    """A saved page cannot be read: empty, binary, not UTF-8, or an unknown layout."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ManifestError(GovkzError):
    """seeds/manifest.toml is missing, malformed, or lacks an entry for a file."""


class LayoutChanged(GovkzError):
    """A gov.kz response does not have the shape the extractors know (README, "Crawling gov.kz")."""

    def __init__(self, reason: str, sample: bytes | str = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.sample = sample


class AccessDenied(GovkzError):
    """Every access strategy was refused by gov.kz for an agency."""


class StoreError(GovkzError):
    """The archive cannot be opened or written (read-only, full disk, corrupt file)."""


class ConfigError(GovkzError):
    """The configuration file or a setting has an invalid value."""
