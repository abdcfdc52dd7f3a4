"""The daemon: when to crawl, publishing, serving, health."""
