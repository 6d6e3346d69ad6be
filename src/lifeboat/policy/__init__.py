"""Pure decisions over backup facts and archived WAL: no I/O, tested without a repository."""
