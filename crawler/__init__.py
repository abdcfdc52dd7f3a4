"""govkz-monitor: crawl, archive and publish the press news of gov.kz agencies."""
