"""The digest: what it holds, when it runs (crontab, DST, clock), sending it once, the scheduler service."""
