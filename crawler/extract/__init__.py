"""Extractors: pure functions that turn what gov.kz served (text, JSON) into NewsItems."""
