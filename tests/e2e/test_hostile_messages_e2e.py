"""Malformed and hostile messages, published raw onto the adjustments queue as a non-Python client
would, on Redis and on RabbitMQ: each one is refused, the worker never stops, and the next valid
command is applied at once."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection, Producer
from sqlalchemy import Engine, select

from models.domain.names import ADJUSTMENTS_QUEUE
from models.persistence.tables import rejected_messages
from tests.chaos.brokers import RabbitVhost, rabbitmq_available
from tests.support import environment
from tests.support.celery_apps import app_for, close_app
from tests.support.factories import create_customer, create_shop
from tests.support.worker import start_worker
from workers.db import database
from workers.process import WorkerProcess

pytestmark = pytest.mark.e2e

REDIS_BROKER = environment.redis_url(8)
NEXT_COMMAND_WAIT = 5.0
"""A frozen or dead consumer never answers; a healthy one answers in milliseconds."""
SHOP = f"hostile-{uuid.uuid4().hex[:8]}"
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@dataclass
class Stack:
    broker: str
    url: str
    app: Celery
    worker: WorkerProcess

    def publish_raw(self, body: bytes, headers: Any) -> None:
        """The body as given, with these headers: what a careless or hostile client sends."""
        if self.broker == "redis":
            self.push(envelope(body, headers))
            return
        with Connection(self.url) as connection:
            Producer(connection).publish(
                body,
                exchange="",
                routing_key=ADJUSTMENTS_QUEUE,
                headers=headers,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
            )

    def push(self, raw: bytes) -> None:
        with redis.Redis.from_url(self.url) as client:
            client.lpush(ADJUSTMENTS_QUEUE, raw)

    def apply_next_command(self) -> dict[str, Any]:
        command = {
            "command_id": f"next-{uuid.uuid4().hex[:8]}",
            "shop_id": SHOP,
            "customer_id": "c",
            "adjustment": 1,
        }
        result: dict[str, Any] = self.app.send_task(
            "loyalty.adjust_points", args=[command], queue=ADJUSTMENTS_QUEUE
        ).get(timeout=NEXT_COMMAND_WAIT)
        return result


def envelope(body: bytes, headers: Any, changes: dict[str, Any] | None = None) -> bytes:
    """kombu's Redis envelope around ``body``, as the README tells a non-Python client to send."""
    message: dict[str, Any] = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": ADJUSTMENTS_QUEUE},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    message.update(changes or {})
    return json.dumps(message).encode()


def task_headers(**changes: Any) -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    headers = {"lang": "js", "task": "loyalty.adjust_points", "id": task_id, "root_id": task_id}
    headers.update(changes)
    return {name: value for name, value in headers.items() if value is not None}


def task_body(*args: Any) -> bytes:
    return json.dumps([list(args), {}, EMBED]).encode()


def command(command_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "command_id": command_id,
        "shop_id": SHOP,
        "customer_id": "c",
        "adjustment": 5,
    } | changes


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture(
    scope="module",
    params=[
        "redis",
        pytest.param(
            "rabbitmq",
            marks=pytest.mark.skipif(not rabbitmq_available(), reason="needs a local RabbitMQ"),
        ),
    ],
)
def stack(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Stack]:
    vhost = None
    if request.param == "redis":
        url = REDIS_BROKER
        with redis.Redis.from_url(url) as client:
            client.flushdb()
    else:
        vhost = RabbitVhost()
        vhost.start()
        url = vhost.url
    env = environment.worker_environment(LOYALTY_BROKER_URL=url)
    create_shop(database.unit_of_work(), SHOP)
    create_customer(database.unit_of_work(), SHOP, "c")
    app = app_for(env)
    worker = start_worker(app, env, name=f"hostile-{request.param}")
    try:
        yield Stack(request.param, url, app, worker)
    finally:
        worker.stop()
        close_app(app)
        if vhost is not None:
            vhost.close()


def _assert_worker_carries_on(stack: Stack) -> None:
    pid = stack.worker.pid
    assert stack.apply_next_command()["status"] == "applied"
    stack.worker.check_alive()
    assert stack.worker.pid == pid


def _stored_rejection(engine: Engine, command_id: str) -> Any:
    """The rejection's row, once the worker process that refused the message has written it."""
    deadline = time.monotonic() + 30
    while True:
        with engine.connect() as connection:
            row = connection.execute(
                select(rejected_messages).where(
                    rejected_messages.c.shop_id == SHOP,
                    rejected_messages.c.command_id == command_id,
                )
            ).one_or_none()
        if row is not None or time.monotonic() > deadline:
            assert row is not None, f"no rejection recorded for {command_id}"
            return row
        time.sleep(0.1)


def _refused_command(stack: Stack, engine: Engine, command_id: str, **changes: Any) -> Any:
    """Publishes an invalid command raw; its rejection's row once the next command went through."""
    stack.publish_raw(task_body(command(command_id, **changes)), task_headers())
    _assert_worker_carries_on(stack)
    return _stored_rejection(engine, command_id)


MALFORMED_TASKS = {
    "no id header": (task_body(command("x")), task_headers(id=None)),
    "no task header": (task_body(command("x")), task_headers(task=None)),
    "body an object": (b'{"command_id": "x"}', task_headers()),
    "body a bare number": (b"42", task_headers()),
    "body not JSON": (b"[[{]", task_headers()),
    "body of two items": (json.dumps([[command("x")], {}]).encode(), task_headers()),
    "800 nested lists": (task_body(nested(800)), task_headers()),
}


@pytest.mark.parametrize("case", list(MALFORMED_TASKS))
def test_a_malformed_task_message_is_refused_and_the_next_command_applied(
    stack: Stack, case: str
) -> None:
    body, headers = MALFORMED_TASKS[case]

    stack.publish_raw(body, headers)

    _assert_worker_carries_on(stack)
    if "id" in headers:  # a publisher waiting on it gets the rejection
        answer = stack.app.AsyncResult(headers["id"]).get(timeout=NEXT_COMMAND_WAIT)
        assert answer["status"] == "rejected"
        assert answer["error"]["code"] == "invalid_command"


MALFORMED_ENVELOPES = {
    "not JSON": b"{not json",
    "a bare number": b"42",
    "no properties": json.dumps({"body": "W10=", "headers": {}}).encode(),
    "headers not an object": envelope(task_body(command("x")), "headers"),
    "body not base64": envelope(b"", task_headers(), {"body": "%%% not base64 %%%"}),
}


# AMQP frames its messages itself: only a Redis client writes the envelope.
@pytest.mark.parametrize("stack", ["redis"], indirect=True)
@pytest.mark.parametrize("case", list(MALFORMED_ENVELOPES))
def test_a_malformed_redis_envelope_is_dropped_and_the_next_command_applied(
    stack: Stack, case: str
) -> None:
    stack.push(MALFORMED_ENVELOPES[case])

    _assert_worker_carries_on(stack)


def test_a_deeply_nested_command_of_a_known_shop_is_recorded(stack: Stack, engine: Engine) -> None:
    command_id = f"deep-{stack.broker}"
    headers = task_headers()
    stack.publish_raw(task_body(command(command_id, note=nested(800))), headers)

    _assert_worker_carries_on(stack)
    rejection = _stored_rejection(engine, command_id)
    assert rejection.code == "invalid_command"
    assert "nests deeper" in rejection.result["error"]["message"]
    answer = stack.app.AsyncResult(headers["id"]).get(timeout=NEXT_COMMAND_WAIT)
    assert answer == rejection.result


def test_a_note_of_one_unbroken_100_kb_token_is_refused_without_freezing_the_worker(
    stack: Stack, engine: Engine
) -> None:
    rejection = _refused_command(stack, engine, f"token-{stack.broker}", note="x" * 100_000)

    assert stack.app.control.ping(destination=[stack.worker.nodename], timeout=1)
    assert rejection.code == "invalid_command"


def test_a_20_mb_command_is_stored_capped_and_marked_truncated(
    stack: Stack, engine: Engine
) -> None:
    rejection = _refused_command(stack, engine, f"huge-{stack.broker}", note="y" * 20_000_000)

    assert rejection.payload_truncated
    assert len(rejection.payload) == 65_536
