"""What Lifeboat backs up: one package per kind of source."""
