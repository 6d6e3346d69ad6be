"""Prometheus metrics: the newest state computed from the repositories (collect.py), the
runner's job runs and heartbeat (runs.py), served by the daemon (server.py) or written as a
textfile by one-shot commands (textfile.py). docs/metrics.md lists every metric."""
