"""Every Celery setting of the loyalty worker, in one place: ``configuration(settings)``. Nothing
is read from the environment here, and nothing of the worker is imported: ``workers.app`` passes
the process's settings and its providers when Celery first needs its configuration.

Delivery is at-least-once: messages are acknowledged after the task returns (live commands once
their batch commits, see ``tasks.batching``), and a worker child that dies puts its message back.
Side-effect workers reserve one message per process; a worker of live commands, two batches. The
database (idempotency keys, the outbox) turns that into exactly-once effects. Why each setting is
here: ``../shared/reference/reliability.md`` and the README's "Delivery guarantees".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kombu import Exchange, Queue

from models.domain import names

if TYPE_CHECKING:
    from workers.settings import Settings


def configuration(settings: Settings, providers: Sequence[str]) -> dict[str, Any]:
    """The Celery settings of a worker, a publisher or Flower of this service, whose side effects
    include a sync to each of ``providers``."""
    return {
        **_STATIC,
        **_broker(settings, queues(providers)),
        **_redelivery(settings),
        "beat_schedule": _beat_schedule(settings),
    }


def route(name: str, *_: Any, **__: Any) -> dict[str, str] | None:
    """Celery's router: each task of this worker to its own queue (``models.domain.names``)."""
    queue = names.queue_of(name)
    return None if queue is None else {"queue": queue, "routing_key": queue}


def _is_rabbitmq(broker_url: str) -> bool:
    return broker_url.startswith(("amqp", "pyamqp"))


def queues(providers: Sequence[str]) -> tuple[str, ...]:
    """Every queue of the service: live commands, migrations, and one per side effect."""
    return (
        names.ADJUSTMENTS_QUEUE,
        names.MIGRATIONS_QUEUE,
        *names.side_effect_queues(tuple(providers)),
    )


def _broker(settings: Settings, queue_names: tuple[str, ...]) -> dict[str, Any]:
    broker_url = settings.broker_url
    rabbitmq = _is_rabbitmq(broker_url)
    queue_arguments = {"x-queue-type": "quorum"} if rabbitmq else None
    configured: dict[str, Any] = {
        "broker_url": broker_url,
        "result_backend": settings.result_backend,
        "task_queues": tuple(
            Queue(
                name,
                Exchange(name, type="direct", durable=True),
                routing_key=name,
                durable=True,
                queue_arguments=queue_arguments,
            )
            for name in queue_names
        ),
        # Were a queue ever created on the fly, on RabbitMQ it must be a quorum queue like the
        # others: a classic queue of the same name would keep every worker from starting.
        "task_create_missing_queue_type": "quorum" if rabbitmq else "classic",
    }
    if broker_url.startswith(("redis://", "rediss://")):
        # kombu's Redis transport with a consume that records a message as it leaves its queue.
        configured["broker_transport"] = "workers.redis_broker:Transport"
    if rabbitmq:
        configured["broker_transport_options"] = {"confirm_publish": True, "max_retries": 5}
    elif broker_url.startswith("sqla+"):
        # The embedded SQLite transport hands its options to create_engine(); it takes none.
        configured["broker_transport_options"] = {}
    else:
        configured["broker_transport_options"] = _network_broker_options(settings)
    return configured


def _network_broker_options(settings: Settings) -> dict[str, Any]:
    redelivery = settings.redelivery
    return {
        "visibility_timeout": redelivery.visibility_timeout,
        "unacked_restore_interval": redelivery.restore_interval,
        "unacked_restore_throttle": 1,
        # A worker killed during a restore sweep holds its mutex until this expires (kombu: 300 s).
        "unacked_mutex_expire": redelivery.restore_interval,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 25,
        "retry_on_timeout": True,
        "max_retries": 5,
    }


def _redelivery(settings: Settings) -> dict[str, Any]:
    """A message held by a worker that died is handed to another within LOYALTY_REDELIVERY_BOUND:
    on Redis after the visibility timeout, found by a sweep every restore interval; on RabbitMQ
    as soon as the connection drops. Nothing holds a message longer: tasks are limited to half the
    visibility timeout, and no message carries a countdown or an ETA (waits live on outbox rows)."""
    redelivery = settings.redelivery
    return {
        "task_time_limit": redelivery.task_time_limit,
        "task_soft_time_limit": redelivery.task_soft_time_limit,
        "result_backend_transport_options": {"visibility_timeout": redelivery.visibility_timeout},
        "visibility_timeout": redelivery.visibility_timeout,
    }


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    """The relay re-publishes side effects whose message never left (or was lost); the expiry
    run expires points and sends reminders. A message that waited longer than one interval is
    dropped: the next one does the same work."""
    relay = settings.side_effects.relay_interval
    expiry = settings.side_effects.expiry_interval
    return {
        "relay-outbox": {
            "task": names.RELAY_OUTBOX,
            "schedule": relay,
            "options": {"expires": relay},
        },
        "expire-points": {
            "task": names.EXPIRE_POINTS,
            "schedule": expiry,
            "options": {"expires": expiry},
        },
    }


_STATIC: dict[str, Any] = {
    # JSON only: pickle is refused on the way in and never produced.
    "task_serializer": "json",
    "result_serializer": "json",
    "event_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
    "task_default_queue": names.ADJUSTMENTS_QUEUE,
    "task_routes": (route,),
    "task_create_missing_queues": False,
    # Acknowledge after the work, requeue when a child dies or a hard time limit kills it; a task
    # that raises is not requeued (its command is recorded, or it is a bug to look at).
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "task_acks_on_failure": True,
    "task_acks_on_timeout": False,
    "worker_prefetch_multiplier": 1,
    # A task running when the broker connection drops finishes: every task is idempotent, and an
    # email cancelled between its hand-over and the end of its data would be lost for good.
    "worker_cancel_long_running_tasks_on_connection_loss": False,
    "broker_connection_retry_on_startup": True,
    "broker_connection_max_retries": None,
    "task_publish_retry": True,
    "task_publish_retry_policy": {
        "max_retries": 5,
        "interval_start": 0.2,
        "interval_step": 0.5,
        "interval_max": 3,
    },
    # Results: the database keeps every command's result for good; the backend only lets a
    # publisher wait for one, so results expire there after a day.
    "result_expires": 24 * 3600,
    "result_extended": False,
    "task_ignore_result": False,
    # Every task message is checked before Celery's consumer trusts its shape: see workers.inbound.
    "worker_consumer": "workers.inbound:GuardedConsumer",
    "worker_soft_shutdown_timeout": 30.0,
    "worker_enable_soft_shutdown_on_idle": True,
    "worker_hijack_root_logger": False,
    "worker_redirect_stdouts": False,
}
