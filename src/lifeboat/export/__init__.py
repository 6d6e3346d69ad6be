"""`lifeboat export`: the [schedule.NAME] jobs as systemd units, a crontab or Kubernetes
CronJobs, for those who run Lifeboat from their own scheduler instead of its daemon."""
