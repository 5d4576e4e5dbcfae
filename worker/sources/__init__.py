"""Producers that keep running: followed files, pipes and live chat scrapers, feeding the exactly-once producer
(:mod:`worker.streams.producer`). Signal handlers stay in the CLI."""
