"""Postscript sync task; its client is workers/providers/postscript.py."""

from tasks.syncs import sync_task

sync_postscript = sync_task("postscript")
