"""The delivery settings the reliability of the service rests on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import celeryconfig
from tasks.live_commands import adjust_points, upsert_customer
from workers.app import app
from workers.outbound.providers import PROVIDERS
from workers.process import ROOT
from workers.settings import Settings


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


def test_a_dead_workers_messages_come_back_within_the_redelivery_bound() -> None:
    """Default bound 120 s: visibility timeout plus a restore sweep stay inside it, with room
    for a worker restart, and no task may hold its message past the visibility timeout."""
    options = app.conf.broker_transport_options
    timeout = options["visibility_timeout"]
    assert app.conf.visibility_timeout == timeout
    assert app.conf.result_backend_transport_options["visibility_timeout"] == timeout
    assert options["unacked_restore_throttle"] == 1
    assert timeout + options["unacked_restore_interval"] <= 0.6 * 120
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit <= timeout / 2


def test_no_task_retries_through_a_countdown_in_the_broker() -> None:
    app.loader.import_default_modules()
    for name in TASK_QUEUES:
        assert not getattr(app.tasks[name], "autoretry_for", ()), name


TASK_QUEUES = {
    "loyalty.adjust_points": "loyalty.adjustments",
    "loyalty.upsert_customer": "loyalty.adjustments",
    "loyalty.reverse_adjustment": "loyalty.adjustments",
    "loyalty.adjust_points_bulk": "loyalty.migrations",
    "loyalty.recalculate_tier": "loyalty.tiers",
    "loyalty.recalculate_shop_tiers": "loyalty.tiers",
    "loyalty.send_points_earned_email": "loyalty.emails",
    "loyalty.send_points_expiring_email": "loyalty.emails",
    "loyalty.sync_klaviyo": "loyalty.sync.klaviyo",
    "loyalty.sync_omnisend": "loyalty.sync.omnisend",
    "loyalty.sync_postscript": "loyalty.sync.postscript",
    "loyalty.relay_outbox": "loyalty.outbox",
    "loyalty.expire_points": "loyalty.expiry",
}
PERIODIC = ("loyalty.relay_outbox", "loyalty.expire_points")
"""Beat's tasks: a message lost with its worker is replaced by the next one."""


def test_every_task_has_an_explicit_name_and_its_own_queue() -> None:
    app.loader.import_default_modules()
    for name, queue in TASK_QUEUES.items():
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == queue
    assert {q.name for q in app.conf.task_queues} == set(TASK_QUEUES.values())
    assert app.conf.task_create_missing_queues is False


def test_every_task_is_acknowledged_late_and_requeued_when_its_worker_dies() -> None:
    app.loader.import_default_modules()
    for name in TASK_QUEUES:
        task = app.tasks[name]
        assert task.acks_late is True
        if name not in PERIODIC:
            assert task.reject_on_worker_lost is True


def test_beat_runs_the_outbox_relay_and_the_expiry_run() -> None:
    relay, expiry = app.conf.beat_schedule.values()
    assert relay["task"] == "loyalty.relay_outbox"
    assert 0 < relay["schedule"] <= 60
    assert expiry["task"] == "loyalty.expire_points"
    assert expiry["schedule"] == 3600
    assert expiry["options"] == {"expires": 3600}


def test_the_expiry_interval_is_configurable() -> None:
    env = {**os.environ, "LOYALTY_EXPIRY_INTERVAL": "600"}
    configured = celeryconfig.configuration(Settings.from_environment(env), PROVIDERS)

    assert configured["beat_schedule"]["expire-points"]["schedule"] == 600


def _settings_for(broker_url: str, **environ: str) -> dict[str, object]:
    env = {**os.environ, "LOYALTY_BROKER_URL": broker_url, **environ}
    configured = celeryconfig.configuration(Settings.from_environment(env), PROVIDERS)
    return {
        "options": configured["broker_transport_options"],
        "queue_arguments": configured["task_queues"][0].queue_arguments,
        "time_limit": configured["task_time_limit"],
        "transport": configured.get("broker_transport"),
        "missing_queue_type": configured["task_create_missing_queue_type"],
    }


def test_rabbitmq_gets_quorum_queues_and_publisher_confirms() -> None:
    settings = _settings_for("amqp://guest:guest@127.0.0.1:5672//")

    assert settings["queue_arguments"] == {"x-queue-type": "quorum"}
    assert settings["options"] == {"confirm_publish": True, "max_retries": 5}
    assert settings["transport"] is None


def test_a_redis_broker_is_consumed_through_the_transport_that_records_each_pop() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://redis.example:6380/0"):
        assert _settings_for(url)["transport"] == "workers.redis_broker:Transport"


def test_the_embedded_broker_gets_no_network_options() -> None:
    settings = _settings_for("sqla+sqlite:////tmp/broker.sqlite3")

    assert settings["options"] == {}


def test_the_redelivery_bound_sets_the_visibility_timeout_and_the_time_limits() -> None:
    settings = _settings_for("redis://127.0.0.1:6379/0", LOYALTY_REDELIVERY_BOUND="40")

    options = settings["options"]
    assert isinstance(options, dict)
    assert options["visibility_timeout"] == 20
    assert options["unacked_restore_interval"] == 3
    assert settings["time_limit"] == 10


def test_a_redelivery_bound_too_short_to_run_a_task_is_refused() -> None:
    with pytest.raises(ValueError, match="LOYALTY_REDELIVERY_BOUND must be at least 20 seconds"):
        _settings_for("redis://127.0.0.1:6379/0", LOYALTY_REDELIVERY_BOUND="5")


def test_a_queue_created_on_the_fly_on_rabbitmq_is_a_quorum_queue() -> None:
    settings = _settings_for("amqp://guest:guest@127.0.0.1:5672//")

    assert settings["missing_queue_type"] == "quorum"


def test_reading_the_configuration_module_reads_no_environment() -> None:
    """What the environment says is read once, into the process's settings, when the app is
    first configured; importing ``celeryconfig`` or ``workers.db`` neither reads it nor creates
    a file."""
    probe = (
        "import os, celeryconfig, workers.db, workers.settings as s; "
        "print(s._current is None, os.path.exists(os.environ['LOYALTY_DATA_DIR']))"
    )
    env = {
        **os.environ,
        "LOYALTY_DATA_DIR": "/tmp/loyalty-never-created",
        "LOYALTY_REDELIVERY_BOUND": "x",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )

    assert done.stdout.split() == ["True", "False"]
