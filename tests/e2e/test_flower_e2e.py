"""Flower shows the tasks an operator needs, behind its login, and never a customer's email or
phone: a real worker with task events on and a real Flower process, on their own broker (Redis
db 10), the way docker-compose.yml runs them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import httpx
import pytest
import redis
from celery import Celery
from sqlalchemy import Engine

from tests.support import environment
from tests.support.celery_apps import app_for, close_app
from tests.support.factories import create_shop
from workers.client.publisher import publish_adjustment, publish_customer_upsert
from workers.db import database
from workers.process import ROOT, WorkerProcess

pytestmark = pytest.mark.e2e

BROKER_URL = environment.redis_url(10)
LOGIN = ("operator", "s3cret-flower")
EMAIL = "ada.lovelace@example.com"
PHONE = "+44 20 7946 0958"
OTHER_EMAIL = "charles.babbage@example.org"
OTHER_PHONE = "+1 (555) 010-2398"
# Every form in which the contact details could leak: as sent, and their distinctive parts.
SECRETS = (EMAIL, "ada.lovelace", PHONE, "7946 0958", "79460958", OTHER_EMAIL, "charles.babbage")
UNKNOWN_TASK_EMAIL = "grace.hopper@example.net"
SECRETS += (OTHER_PHONE, "010-2398", "0102398", UNKNOWN_TASK_EMAIL, "grace.hopper")


@dataclass
class Stack:
    app: Celery
    worker: WorkerProcess
    flower: str
    """Flower's base URL."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def stack(engine: Engine) -> Iterator[Stack]:
    with redis.Redis.from_url(BROKER_URL) as broker:
        broker.flushdb()
    env = environment.worker_environment(LOYALTY_BROKER_URL=BROKER_URL)
    # As in docker-compose.yml: Flower reads no result backend, only task events.
    flower, base_url, flower_log = start_flower({**env, "LOYALTY_RESULT_BACKEND": "disabled"})
    app = app_for(env)
    worker = WorkerProcess(
        "flower-e2e",
        ROOT / ".loyalty" / "worker-flower-e2e.log",
        env=env,
        cwd=ROOT,
        events=True,
        log_level="info",
    )
    try:
        worker.start()
        worker.wait_ready(app)
        yield Stack(app, worker, base_url)
    finally:
        worker.stop()
        stop_flower(flower, flower_log)
        close_app(app)
        with redis.Redis.from_url(BROKER_URL) as broker:
            broker.flushdb()


def start_flower(
    env: dict[str, str], name: str = "flower-e2e"
) -> tuple[subprocess.Popen[bytes], str, IO[bytes]]:
    """``celery -A workers.app flower`` with ``env``: the process, its URL and its log file."""
    port = free_port()
    (ROOT / ".loyalty").mkdir(exist_ok=True)
    log = (ROOT / ".loyalty" / f"{name}.log").open("wb")
    flower = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "workers.app", "flower",
            "--address=127.0.0.1", f"--port={port}", f"--basic-auth={':'.join(LOGIN)}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    wait_for_flower(base_url, flower)
    return flower, base_url, log


def stop_flower(flower: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    flower.terminate()
    try:
        flower.wait(30)
    except subprocess.TimeoutExpired:
        flower.kill()
        flower.wait()
    log.close()


def wait_for_flower(base_url: str, flower: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if flower.poll() is not None:
            raise RuntimeError(f"flower exited ({flower.returncode}); see .loyalty/flower-e2e.log")
        try:
            if httpx.get(f"{base_url}/healthcheck", timeout=2).text == "OK":
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"flower did not answer within {timeout}s")


def flower_tasks(stack: Stack, task_ids: set[str], timeout: float = 30) -> dict[str, Any]:
    """Flower's task list once every one of ``task_ids`` has finished in it."""
    deadline = time.monotonic() + timeout
    tasks: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{stack.flower}/api/tasks", auth=LOGIN, timeout=5)
        assert response.status_code == 200, response.text
        tasks = response.json()
        if all(tasks.get(task_id, {}).get("state") == "SUCCESS" for task_id in task_ids):
            return tasks
        time.sleep(0.3)
    raise AssertionError(f"flower never showed {task_ids} succeeded; it shows {tasks}")


def test_flower_shows_the_tasks_but_no_contact_details(stack: Stack) -> None:
    shop_id = f"flower-{uuid.uuid4().hex[:8]}"
    create_shop(database.unit_of_work(), shop_id)
    customer = {"shop_id": shop_id, "customer_id": "ada"}

    upserted = publish_customer_upsert(
        {"command_id": "flower-upsert", **customer, "email": EMAIL, "phone": PHONE},
        app=stack.app,
    )
    assert upserted.get(timeout=30)["status"] == "applied"
    adjusted = publish_adjustment(
        {"command_id": "flower-adjust", **customer, "adjustment": 120, "note": f"for {EMAIL}"},
        app=stack.app,
    )
    # A client that does not mask (any plain Celery client): argsrepr carries the raw values.
    careless_args = [
        {"command_id": "flower-raw", **customer, "email": OTHER_EMAIL, "phone": OTHER_PHONE}
    ]
    careless = stack.app.send_task(
        "loyalty.upsert_customer",
        args=careless_args,
        queue="loyalty.adjustments",
        argsrepr=repr(careless_args),
    )
    # A task the worker does not know: it logs the whole message body as an error.
    stack.app.send_task(
        "loyalty.no_such_task", args=[{"email": UNKNOWN_TASK_EMAIL}], queue="loyalty.adjustments"
    )
    task_ids = {upserted.id, adjusted.id, careless.id}
    results = {task_id: stack.app.AsyncResult(task_id).get(timeout=30) for task_id in task_ids}
    tasks = flower_tasks(stack, task_ids)

    # The publisher still gets the real values back: only what is shown is masked.
    assert results[careless.id]["customer"]["email"] == OTHER_EMAIL
    assert results[upserted.id]["customer"]["phone"] == PHONE
    assert tasks[adjusted.id]["name"] == "loyalty.adjust_points"
    assert tasks[adjusted.id]["state"] == "SUCCESS"
    assert "'adjustment': 120" in tasks[adjusted.id]["args"]
    assert "'points_after': 120" in tasks[adjusted.id]["result"]
    infos = {}
    for task_id in task_ids:
        response = httpx.get(f"{stack.flower}/api/task/info/{task_id}", auth=LOGIN, timeout=5)
        assert response.status_code == 200, response.text
        infos[task_id] = response.json()
    assert infos[upserted.id]["args"] == tasks[upserted.id]["args"]
    # Masked, but still useful to support staff.
    assert "'email': 'a***@e***.com'" in infos[upserted.id]["args"]
    assert "'phone': '+**********58'" in infos[upserted.id]["result"]
    assert "'email': 'c***@e***.org'" in infos[careless.id]["args"]
    assert "for a***@e***.com" in infos[adjusted.id]["args"]
    shown = httpx.get(f"{stack.flower}/api/tasks", auth=LOGIN, timeout=5).text + "".join(
        str(info) for info in infos.values()
    )
    leaked = [secret for secret in SECRETS if secret in shown]
    assert not leaked, leaked
    # Flower has no result backend, so it cannot read the stored (unmasked) results either.
    stored = httpx.get(f"{stack.flower}/api/task/result/{upserted.id}", auth=LOGIN, timeout=5)
    assert stored.status_code == 503

    stack.worker.stop()  # every log line written
    log = stack.worker.log()
    assert f"loyalty.upsert_customer[{upserted.id}] succeeded" in log
    assert "'email': 'c***@e***.org'" in log
    assert "unregistered task of type 'loyalty.no_such_task'" in log
    assert "g***@e***.net" in log
    leaked = [secret for secret in SECRETS if secret in log]
    assert not leaked, leaked


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/api/tasks", None),
        ("/api/task/info/any", None),
        ("/tasks", None),
        ("/api/tasks", (LOGIN[0], "wrong")),
    ],
)
def test_flower_requires_its_login(stack: Stack, path: str, auth: tuple[str, str] | None) -> None:
    response = httpx.get(f"{stack.flower}{path}", auth=auth, timeout=5)

    assert response.status_code == 401
    assert "OK" not in response.text


def test_flower_started_with_the_workers_environment_never_reads_stored_results(
    stack: Stack,
) -> None:
    """The README's other way to start it: ``celery -A workers.app flower`` where the workers
    run, result backend configured."""
    task_id = str(uuid.uuid4())
    upsert_result = {"status": "applied", "customer": {"customer_id": "ada", "email": EMAIL}}
    stack.app.backend.store_result(task_id, upsert_result, "SUCCESS")
    assert stack.app.AsyncResult(task_id).get(timeout=5) == upsert_result
    env = environment.worker_environment(LOYALTY_BROKER_URL=BROKER_URL)
    flower, base_url, log = start_flower(env, name="flower-e2e-workers-env")
    try:
        stored = httpx.get(f"{base_url}/api/task/result/{task_id}", auth=LOGIN, timeout=5)
    finally:
        stop_flower(flower, log)

    assert stored.status_code == 503
    assert "ada.lovelace" not in stored.text
