"""The delivery settings the reliability of the service rests on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tasks.adjustments import adjust_points
from tasks.customers import upsert_customer
from workers.app import app
from workers.process import ROOT


def test_only_json_is_produced_or_accepted() -> None:
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.result_accept_content == ["json"]


def test_messages_are_acknowledged_after_the_work_and_reserved_one_at_a_time() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    for task in (adjust_points, upsert_customer):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True


def test_no_wait_outlasts_the_visibility_timeout() -> None:
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert app.conf.visibility_timeout == timeout
    assert app.conf.result_backend_transport_options["visibility_timeout"] == timeout
    assert app.conf.task_time_limit < timeout
    for task in (adjust_points, upsert_customer):
        assert task.retry_backoff_max < timeout


TASK_QUEUES = {
    "loyalty.adjust_points": "loyalty.adjustments",
    "loyalty.upsert_customer": "loyalty.adjustments",
    "loyalty.adjust_points_bulk": "loyalty.migrations",
    "loyalty.recalculate_tier": "loyalty.tiers",
    "loyalty.recalculate_shop_tiers": "loyalty.tiers",
    "loyalty.send_points_earned_email": "loyalty.emails",
    "loyalty.sync_klaviyo": "loyalty.sync.klaviyo",
    "loyalty.sync_omnisend": "loyalty.sync.omnisend",
    "loyalty.sync_postscript": "loyalty.sync.postscript",
    "loyalty.relay_outbox": "loyalty.outbox",
}


def test_every_task_has_an_explicit_name_and_its_own_queue() -> None:
    app.loader.import_default_modules()
    for name, queue in TASK_QUEUES.items():
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == queue
    assert {q.name for q in app.conf.task_queues} == set(TASK_QUEUES.values())
    assert app.conf.task_create_missing_queues is False


def test_side_effects_are_acknowledged_late_and_retry_database_faults_forever() -> None:
    app.loader.import_default_modules()
    for name in TASK_QUEUES:
        task = app.tasks[name]
        assert task.acks_late is True
        if name.startswith(("loyalty.sync_", "loyalty.recalculate", "loyalty.send")):
            assert task.reject_on_worker_lost is True
            assert task.max_retries is None
            assert task.retry_backoff_max < app.conf.visibility_timeout


def test_beat_runs_the_outbox_relay() -> None:
    (entry,) = app.conf.beat_schedule.values()
    assert entry["task"] == "loyalty.relay_outbox"
    assert 0 < entry["schedule"] <= 60


def _settings_for(broker_url: str) -> dict[str, object]:
    probe = (
        "import celeryconfig, json; print(json.dumps({'options': "
        "celeryconfig.broker_transport_options, 'queue_arguments': "
        "celeryconfig.task_queues[0].queue_arguments}))"
    )
    env = dict(os.environ, LOYALTY_BROKER_URL=broker_url)
    output = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded: dict[str, object] = json.loads(output)
    return loaded


def test_rabbitmq_gets_quorum_queues_and_publisher_confirms() -> None:
    settings = _settings_for("amqp://guest:guest@127.0.0.1:5672//")

    assert settings["queue_arguments"] == {"x-queue-type": "quorum"}
    assert settings["options"] == {"confirm_publish": True, "max_retries": 5}


def test_the_embedded_broker_gets_no_network_options() -> None:
    settings = _settings_for("sqla+sqlite:////tmp/broker.sqlite3")

    assert settings["options"] == {}
