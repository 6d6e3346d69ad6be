"""PostgreSQL as a source: logical backups (pg_dump) and their restores, whole or by table;
physical base backups (pg_basebackup, incremental on 17+) and point-in-time recovery."""
