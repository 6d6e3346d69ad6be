"""The command line: click, printing and exit codes; one thin module per command.

Kept free of imports: entry.py reaches logsetup through it on the wal-push/wal-fetch path."""
