"""Lifeboat: encrypted, streaming backups that prove they restore."""

__version__ = "0.1.0"
