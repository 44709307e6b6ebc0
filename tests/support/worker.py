"""Real worker processes for end-to-end tests, logging under ``.loyalty/``."""

from __future__ import annotations

from collections.abc import Mapping

from celery import Celery

from workers.process import ROOT, WorkerProcess


def start_worker(app: Celery, env: Mapping[str, str], name: str = "test") -> WorkerProcess:
    log_path = ROOT / ".loyalty" / f"worker-{name}.log"
    worker = WorkerProcess(name, log_path, env=env, cwd=ROOT).start()
    worker.wait_ready(app)
    return worker
