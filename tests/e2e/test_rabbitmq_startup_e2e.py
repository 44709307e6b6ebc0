"""Start-up order on RabbitMQ: whoever declares the adjustments queue first, it ends up a quorum
queue when a Python publisher with the project's settings comes first, and a worker that finds a
classic queue in its place says what is wrong and how to fix it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from models.domain.names import ADJUSTMENTS_QUEUE
from tests.chaos.brokers import RabbitVhost, rabbitmq_available, rabbitmqctl
from tests.support import environment
from tests.support.celery_apps import app_for, close_app
from workers.process import ROOT, WorkerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not rabbitmq_available(), reason="needs a local RabbitMQ"),
]


@pytest.fixture
def vhost() -> Iterator[RabbitVhost]:
    vhost = RabbitVhost()
    vhost.start()
    yield vhost
    vhost.close()


def queue_types(vhost: RabbitVhost) -> dict[str, str]:
    listed = rabbitmqctl("list_queues", "-p", vhost.vhost, "name", "type", "--no-table-headers")
    return dict(line.split("\t")[:2] for line in listed.strip().splitlines() if "\t" in line)


def test_a_python_publisher_that_comes_first_declares_a_quorum_queue(
    vhost: RabbitVhost,
) -> None:
    app = app_for(environment.worker_environment(LOYALTY_BROKER_URL=vhost.url))
    try:
        app.send_task("loyalty.adjust_points", args=[{}], queue=ADJUSTMENTS_QUEUE)
    finally:
        close_app(app)

    assert queue_types(vhost)[ADJUSTMENTS_QUEUE] == "quorum"


def test_a_worker_that_finds_a_classic_queue_says_how_to_fix_it(vhost: RabbitVhost) -> None:
    exchange = Exchange(ADJUSTMENTS_QUEUE, type="direct")
    with Connection(vhost.url) as connection:
        Queue(ADJUSTMENTS_QUEUE, exchange, routing_key=ADJUSTMENTS_QUEUE, durable=True)(
            connection.default_channel
        ).declare()
    env = environment.worker_environment(LOYALTY_BROKER_URL=vhost.url)
    log_path = ROOT / ".loyalty" / "worker-classic-queue.log"
    worker = WorkerProcess("classic-queue", log_path, env=env, cwd=ROOT).start()
    try:
        deadline = time.monotonic() + 60
        while worker.process is not None and worker.process.poll() is None:
            assert time.monotonic() < deadline, "the worker kept running on a classic queue"
            time.sleep(0.2)
    finally:
        worker.stop()

    log = worker.log()
    assert f"RabbitMQ already has the queue '{ADJUSTMENTS_QUEUE}'" in log
    assert f"rabbitmqctl delete_queue {ADJUSTMENTS_QUEUE} --vhost {vhost.vhost}" in log
    assert "x-queue-type: quorum" in log
