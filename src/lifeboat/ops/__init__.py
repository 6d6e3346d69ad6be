"""Repository-wide jobs shared by the commands (and later a daemon): verify, prune, holds,
status, and the setup and check of WAL archiving."""
