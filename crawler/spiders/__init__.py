"""Spiders only route: build requests, hand responses to a pure extractor, yield items."""
