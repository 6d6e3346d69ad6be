"""Files and directories: one tar (PAX) archive and a per-file sha256 index (docs/files.md)."""
