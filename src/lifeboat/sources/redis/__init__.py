"""Redis sources: RDB snapshots over the replication protocol or from BGSAVE."""
