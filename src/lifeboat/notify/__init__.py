"""Notifications: events of jobs (event.py, outcomes.py) sent through channels (webhook,
Slack, email, Apprise) with filters, retries and repeat suppression (deliver.py,
incidents.py), and the dead-man's-switch ping (ping.py)."""
