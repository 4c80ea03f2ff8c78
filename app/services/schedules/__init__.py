"""Schedules (beyond the contract): tasks the leader submits by cron or period."""
