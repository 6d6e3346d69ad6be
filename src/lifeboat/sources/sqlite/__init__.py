"""SQLite databases as a source: a consistent snapshot of a live database file."""
