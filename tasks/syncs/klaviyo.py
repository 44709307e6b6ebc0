"""Klaviyo sync task; its client is workers/providers/klaviyo.py."""

from tasks.syncs import sync_task

sync_klaviyo = sync_task("klaviyo")
