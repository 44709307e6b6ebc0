"""Omnisend sync task; its client is workers/providers/omnisend.py."""

from tasks.syncs import sync_task

sync_omnisend = sync_task("omnisend")
