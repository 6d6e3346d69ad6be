"""Utilities below everything else: file writes that survive a crash, secret redaction, finding
the lifeboat executable, progress counters. Kept free of imports: the wal-push path loads redact."""
