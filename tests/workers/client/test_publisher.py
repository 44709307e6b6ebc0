"""The publisher against real brokers: round trips through the session's worker, the exact wire
message on a Redis database no worker reads, a hand-built message from a client with no Celery,
connection retries through a proxy that cuts the line, and RabbitMQ publisher confirms."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from celery.exceptions import TimeoutError as ResultTimeout
from click.testing import CliRunner

import celeryconfig
from models.domain.commands import AdjustPoints, InvalidCommand, ReverseAdjustment, UpsertCustomer
from models.domain.names import ADJUST_POINTS_TASK
from tests.support import environment
from tests.support.celery_apps import close_app
from tests.support.factories import create_customer, create_shop
from tests.support.tcp_proxy import TcpProxy
from workers.cli.main import main
from workers.client.publisher import (
    CommandTimeout,
    PublishError,
    publish,
    publish_adjustment,
    publish_customer_upsert,
    publish_reversal,
)
from workers.db import database
from workers.outbound.providers import PROVIDERS
from workers.process import ROOT, WorkerProcess
from workers.settings import settings

IDLE_DB = 10
QUEUE = "loyalty.adjustments"


class IdleBroker:
    """Redis db 10 under a key prefix of its own: no worker reads it, so what the publisher sent
    stays in the queue's list for the test to read."""

    def __init__(self, port: int = environment.REDIS_PORT, *, results: bool = True) -> None:
        """The publisher reaches Redis on ``port`` (a proxy's, to cut the line); the test reads
        it directly."""
        self.prefix = f"publisher-test-{uuid.uuid4().hex[:8]}:"
        self.redis = redis.Redis(host="127.0.0.1", port=environment.REDIS_PORT, db=IDLE_DB)
        self.app = publisher_app(f"redis://127.0.0.1:{port}/{IDLE_DB}", self.prefix, results)

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.lrange(self.prefix + QUEUE, 0, -1)]

    def clear(self) -> None:
        keys = list(self.redis.scan_iter(f"{self.prefix}*"))
        if keys:
            self.redis.delete(*keys)

    def close(self) -> None:
        self.clear()
        self.redis.close()
        close_app(self.app)


def publisher_app(broker_url: str, key_prefix: str, results: bool) -> Celery:
    """A Python service's own Celery app, configured like the worker's, on another broker."""
    app = Celery("publisher-test", set_as_current=False)
    app.conf.update(celeryconfig.configuration(settings(), PROVIDERS))
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "global_keyprefix": key_prefix,
    }
    if not results:
        app.conf.result_backend = "disabled"
    return app


@pytest.fixture(scope="module")
def idle_broker() -> Iterator[IdleBroker]:
    """One for the module, so its result backend outlives every AsyncResult a test leaves."""
    broker = IdleBroker()
    yield broker
    broker.close()


@pytest.fixture
def idle(idle_broker: IdleBroker) -> IdleBroker:
    idle_broker.clear()
    return idle_broker


@pytest.fixture
def shop(engine: object) -> str:
    """A committed shop with customer ``ada`` (100 points), for the worker to find."""
    shop_id = f"pub-{uuid.uuid4().hex[:8]}"
    create_shop(database.unit_of_work(), shop_id)
    create_customer(database.unit_of_work(), shop_id, "ada", email="ada@example.com")
    return shop_id


def decode_body(message: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(message["body"]))


@pytest.mark.e2e
class TestRoundTrip:
    def test_a_typed_command_waits_for_its_applied_result(
        self, worker: WorkerProcess, shop: str
    ) -> None:
        command = AdjustPoints(
            command_id=f"typed-{uuid.uuid4()}",
            shop_id=shop,
            customer_id="ada",
            adjustment=250,
            note="Welcome",
        )

        result = publish_adjustment(command, wait=True, timeout=30)

        assert result["status"] == "applied"
        assert result["command_id"] == command.command_id
        assert result["data"]["attributes"]["applied_adjustment"] == 250
        assert result["account"]["points"]["balance"] == 250
        assert result["data"]["attributes"]["note"] == "Welcome"

    def test_a_mapping_with_aliases_is_validated_and_applied(
        self, worker: WorkerProcess, shop: str
    ) -> None:
        command = {
            "command_id": f"wix-{uuid.uuid4()}",
            "shop_id": shop,
            "customer_id": "ada",
            "amount": 40,
            "description": "  Redeemed nothing  ",
        }

        result = publish_adjustment(command, wait=True, timeout=30)

        assert result["data"]["attributes"]["adjustment"] == 40
        assert result["data"]["attributes"]["note"] == "Redeemed nothing"

    def test_a_rejected_command_returns_its_rejection(
        self, worker: WorkerProcess, shop: str
    ) -> None:
        refused = publish_adjustment(
            {
                "command_id": f"refused-{uuid.uuid4()}",
                "shop_id": shop,
                "customer_id": "ada",
                "adjustment": -1000,
                "on_insufficient_points": "reject",
            },
            wait=True,
            timeout=30,
        )
        unknown = publish_adjustment(
            {"command_id": "who", "shop_id": shop, "customer_id": "nobody", "adjustment": 5},
            wait=True,
            timeout=30,
        )

        assert refused["status"] == "rejected"
        assert refused["error"]["code"] == "insufficient_points"
        assert refused["error"]["http_status"] == 422
        assert unknown["error"]["code"] == "customer_not_found"

    def test_an_upsert_returns_the_stored_customer(self, worker: WorkerProcess, shop: str) -> None:
        command = UpsertCustomer(
            command_id=f"upsert-{uuid.uuid4()}",
            shop_id=shop,
            customer_id="grace",
            email="grace@example.com",
            phone="+1 555 010 0199",
        )

        pending = publish_customer_upsert(command)
        result = pending.get(timeout=30)

        assert result["created"] is True
        assert result["customer"]["email"] == "grace@example.com"
        assert result["customer"]["phone"] == "+1 555 010 0199"

    def test_a_typed_reversal_returns_what_remains_reversible(
        self, worker: WorkerProcess, shop: str
    ) -> None:
        granted = publish_adjustment(
            {"command_id": f"order-{uuid.uuid4()}", "shop_id": shop, "customer_id": "ada",
             "adjustment": 90},
            wait=True,
            timeout=30,
        )  # fmt: skip
        command = ReverseAdjustment(
            command_id=f"refund-{uuid.uuid4()}",
            shop_id=shop,
            customer_id="ada",
            transaction_id=granted["transaction_id"].upper(),
            points=30,
        )

        result = publish_reversal(command, wait=True, timeout=30)

        assert result["data"]["type"] == "points_reversal"
        attributes = result["data"]["attributes"]
        assert attributes["reverses_transaction_id"] == granted["transaction_id"]
        assert (attributes["applied_adjustment"], attributes["remaining_reversible"]) == (-30, 60)

    def test_the_raw_publish_sends_what_it_is_given_and_the_worker_rejects_it(
        self, worker: WorkerProcess, shop: str
    ) -> None:
        bad = {"command_id": "raw-bad", "shop_id": shop, "customer_id": "ada", "adjustment": "5"}

        result = publish(ADJUST_POINTS_TASK, bad).get(timeout=30)

        assert result["error"]["code"] == "invalid_command"
        assert result["error"]["details"]["errors"] == [
            {"field": "adjustment", "reason": "must be a JSON integer"}
        ]


class TestInvalidInput:
    @pytest.mark.parametrize(
        ("command", "field"),
        [
            ({"adjustment": "500"}, "adjustment"),
            ({"adjustment": 0}, "adjustment"),
            ({}, "adjustment"),
            ({"adjustment": 5, "bonus": 1}, "bonus"),
            ({"adjustment": 5, "amount": 5}, "amount"),
            ({"adjustment": 5, "note": "x" * 501}, "note"),
        ],
    )
    def test_an_invalid_adjustment_fails_before_anything_is_sent(
        self, idle: IdleBroker, command: dict[str, Any], field: str
    ) -> None:
        full = {"command_id": "c-1", "shop_id": "s", "customer_id": "c", **command}

        with pytest.raises(InvalidCommand) as invalid:
            publish_adjustment(full, app=idle.app)

        assert field in [error["field"] for error in invalid.value.errors]
        assert field in str(invalid.value)
        assert idle.messages() == []

    def test_an_invalid_upsert_fails_naming_the_field(self, idle: IdleBroker) -> None:
        with pytest.raises(InvalidCommand, match="email: is not a valid email"):
            publish_customer_upsert(
                {"command_id": "u", "shop_id": "s", "customer_id": "c", "email": "nope"},
                app=idle.app,
            )
        with pytest.raises(InvalidCommand, match="command: must be a JSON object"):
            publish_customer_upsert(["not", "a", "command"], app=idle.app)  # type: ignore[arg-type]
        assert idle.messages() == []

    def test_an_invalid_reversal_fails_naming_the_field(self, idle: IdleBroker) -> None:
        command = {"command_id": "r", "shop_id": "s", "customer_id": "c", "transaction_id": "42"}

        with pytest.raises(InvalidCommand, match="transaction_id: must be a transaction id"):
            publish_reversal(command, app=idle.app)
        with pytest.raises(InvalidCommand, match="points: must be at least 1"):
            publish_reversal(
                {**command, "transaction_id": str(uuid.uuid4()), "points": 0}, app=idle.app
            )
        assert idle.messages() == []

    def test_the_wrong_kind_of_command_is_refused(self, idle: IdleBroker) -> None:
        upsert = UpsertCustomer(command_id="u", shop_id="s", customer_id="c")

        with pytest.raises(TypeError, match="expected a AdjustPoints command"):
            publish_adjustment(upsert, app=idle.app)  # type: ignore[arg-type]
        assert idle.messages() == []


class TestWaiting:
    def test_waiting_with_no_worker_raises_a_clear_timeout(self, idle: IdleBroker) -> None:
        command = {"command_id": "lonely", "shop_id": "s", "customer_id": "c", "adjustment": 5}
        started = time.monotonic()

        with pytest.raises(CommandTimeout) as timeout:
            publish_adjustment(command, wait=True, timeout=1, app=idle.app)

        assert 1 <= time.monotonic() - started < 10
        assert isinstance(timeout.value, ResultTimeout)  # what earlier callers catch
        assert timeout.value.command_id == "lonely"
        assert "'lonely'" in str(timeout.value)
        assert "within 1s" in str(timeout.value)
        assert "loyalty.adjustments" in str(timeout.value)
        # The command is still queued: a worker will apply it later.
        [message] = idle.messages()
        assert message["headers"]["id"] == timeout.value.task_id


class TestWireMessage:
    def test_the_message_is_a_plain_celery_protocol_2_json_message(self, idle: IdleBroker) -> None:
        command = {
            "command_id": "wire-1",
            "shop_id": "coffee-co",
            "customer_id": "6789012345",
            "email": "jane.doe@example.com",
            "phone": "+1 555 0100 189",
        }

        pending = publish_customer_upsert(command, app=idle.app)

        [message] = idle.messages()
        headers, properties = message["headers"], message["properties"]
        assert message["content-type"] == "application/json"
        assert message["content-encoding"] == "utf-8"
        assert properties["body_encoding"] == "base64"
        assert properties["delivery_info"]["routing_key"] == QUEUE
        assert headers["lang"] == "py"
        assert headers["task"] == "loyalty.upsert_customer"
        assert headers["id"] == headers["root_id"] == pending.id
        assert headers["retries"] == 0
        assert decode_body(message) == [
            [command],
            {},
            {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
        ]
        # What Flower and the logs show of the arguments: no contact details.
        assert headers["argsrepr"] == (
            "[{'command_id': 'wire-1', 'shop_id': 'coffee-co', 'customer_id': '6789012345', "
            "'email': 'j***@e***.com', 'phone': '+*********89'}]"
        )
        assert headers["kwargsrepr"] == "{}"
        assert "jane" not in json.dumps(headers)
        assert "0100" not in json.dumps(headers)

    def test_a_typed_command_is_sent_as_its_json_dump_without_nulls(self, idle: IdleBroker) -> None:
        command = AdjustPoints.model_validate(
            {"command_id": "wire-2", "shop_id": "s", "customer_id": "c", "amount": -5}
        )

        publish_adjustment(command, app=idle.app)

        [message] = idle.messages()
        [[sent], kwargs, _] = decode_body(message)
        assert message["headers"]["task"] == "loyalty.adjust_points"
        assert kwargs == {}
        assert sent == {
            "command_id": "wire-2",
            "shop_id": "s",
            "customer_id": "c",
            "adjustment": -5,
            "update_lifetime_points": True,
            "send_email": True,
            "on_insufficient_points": "floor",
        }


def hand_built_message(command: dict[str, Any], task_id: str) -> dict[str, Any]:
    """A Celery protocol 2 message built with nothing but JSON and base64, as a service in any
    language would (the README's example)."""
    body = [[command], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": "loyalty.adjust_points",
            "id": task_id,
            "root_id": task_id,
            "parent_id": None,
            "group": None,
            "retries": 0,
            "eta": None,
            "expires": None,
            "timelimit": [None, None],
            "argsrepr": f"[{{'command_id': {command['command_id']!r}, ...}}]",
            "kwargsrepr": "{}",
            "origin": "support-tool@host-1",
        },
        "properties": {
            "correlation_id": task_id,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": QUEUE},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


@pytest.mark.e2e
def test_a_hand_built_message_pushed_with_plain_redis_is_applied(
    worker: WorkerProcess, shop: str
) -> None:
    task_id = str(uuid.uuid4())
    command = {
        "command_id": "support-4711",
        "shop_id": shop,
        "customer_id": "ada",
        "adjustment": 500,
        "note": "Goodwill gesture after delayed order",
    }

    with (
        redis.Redis.from_url(environment.BROKER_URL) as broker,
        redis.Redis.from_url(environment.RESULT_BACKEND) as results,
    ):
        broker.lpush(QUEUE, json.dumps(hand_built_message(command, task_id)))
        deadline = time.monotonic() + 30
        while (stored := results.get(f"celery-task-meta-{task_id}")) is None:
            assert time.monotonic() < deadline, "the worker never stored a result"
            time.sleep(0.1)

    meta = json.loads(stored)
    assert meta["status"] == "SUCCESS"
    assert meta["result"]["status"] == "applied"
    assert meta["result"]["command_id"] == "support-4711"
    assert meta["result"]["account"]["points"]["balance"] == 500
    # The same command from the Python publisher is the same command: its stored result.
    assert publish_adjustment(command, wait=True, timeout=30) == meta["result"]


class TestConnectionRetry:
    def test_a_publish_during_a_short_outage_is_retried_until_it_goes_through(self) -> None:
        proxy = TcpProxy(environment.REDIS_PORT)
        broker = IdleBroker(port=proxy.port, results=False)
        try:
            proxy.cut()
            threading.Timer(1.0, proxy.restore).start()
            started = time.monotonic()

            publish_adjustment(
                {"command_id": "retried", "shop_id": "s", "customer_id": "c", "adjustment": 1},
                app=broker.app,
            )

            assert time.monotonic() - started >= 0.9
            [message] = broker.messages()
            assert decode_body(message)[0][0]["command_id"] == "retried"
        finally:
            proxy.close()
            broker.close()

    def test_a_broker_down_through_every_retry_raises_publish_error(self) -> None:
        proxy = TcpProxy(environment.REDIS_PORT)
        broker = IdleBroker(port=proxy.port, results=False)
        broker.app.conf.task_publish_retry_policy = {
            "max_retries": 2,
            "interval_start": 0.1,
            "interval_step": 0.1,
            "interval_max": 0.2,
        }
        try:
            proxy.cut()
            with pytest.raises(PublishError, match="command 'lost' was not published"):
                publish_adjustment(
                    {"command_id": "lost", "shop_id": "s", "customer_id": "c", "adjustment": 1},
                    app=broker.app,
                )
        finally:
            proxy.close()
            broker.close()
        assert broker.messages() == []


def rabbitmq_admin() -> bool:
    if shutil.which("rabbitmqctl") is None:
        return False
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        return False
    status = subprocess.run(["rabbitmqctl", "list_vhosts"], capture_output=True, timeout=30)
    return status.returncode == 0


@pytest.mark.skipif(not rabbitmq_admin(), reason="needs a local RabbitMQ and rabbitmqctl")
def test_rabbitmq_refusing_a_message_raises_instead_of_losing_it() -> None:
    """The service's own configuration (``celeryconfig`` read with an ``amqp://`` broker URL):
    publisher confirms make a refused message an error. Without them the same publish returns
    as if all was well and the message is gone."""
    vhost = f"loyalty-publisher-{uuid.uuid4().hex[:8]}"

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)

    def publish_from_a_service(confirms: bool) -> subprocess.CompletedProcess[str]:
        script = (
            "from workers.app import app\n"
            f"if not {confirms}: app.conf.broker_transport_options = {{}}\n"
            "from workers.client.publisher import publish_adjustment\n"
            "publish_adjustment({'command_id': 'c', 'shop_id': 's', 'customer_id': 'c', "
            "'adjustment': 1})\n"
            "print('published')\n"
        )
        env = {
            **os.environ,
            "LOYALTY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "LOYALTY_RESULT_BACKEND": environment.RESULT_BACKEND,
        }
        return subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ctl("add_vhost", vhost)
    try:
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        accepted = publish_from_a_service(confirms=True)
        assert accepted.returncode == 0, accepted.stderr
        ctl(
            "set_policy", "-p", vhost, "full", "^loyalty\\.adjustments$",
            '{"max-length": 0, "overflow": "reject-publish"}', "--apply-to", "queues",
        )  # fmt: skip

        refused = publish_from_a_service(confirms=True)
        unconfirmed = publish_from_a_service(confirms=False)

        assert refused.returncode != 0
        assert "PublishError: loyalty.adjust_points command 'c' was not published" in (
            refused.stderr
        )
        assert "MessageNacked" in refused.stderr
        assert unconfirmed.returncode == 0, unconfirmed.stderr
        assert "published" in unconfirmed.stdout
    finally:
        ctl("delete_vhost", vhost)


def test_the_cli_refuses_an_invalid_command_without_sending_it() -> None:
    result = CliRunner().invoke(main, ["adjust", "s", "c", "--adjustment", "0"])

    assert result.exit_code == 1
    assert "invalid command, nothing was sent: adjustment: must not be zero" in result.output
