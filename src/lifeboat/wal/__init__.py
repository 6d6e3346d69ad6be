"""Continuous WAL archiving: wal-push, wal-fetch, the async spool, prefetch, wal-stream.

Kept free of imports: PostgreSQL runs wal-push and wal-fetch once per file, and importing
this package is on their path."""
