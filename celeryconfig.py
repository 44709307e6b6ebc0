"""Every Celery setting of the loyalty worker, in one place.

Delivery is at-least-once: messages are acknowledged after the task returns (live commands once
their batch commits, see ``tasks.batching``), and a worker child that dies puts its message back.
Side-effect workers reserve one message per process; a worker of live commands, two batches. The
database (idempotency keys, the outbox) turns that into exactly-once effects. Why each setting is
here: ``../shared/reference/reliability.md`` and the README's "Delivery guarantees".
"""

from kombu import Exchange, Queue

from models.domain.side_effects import (
    PROVIDERS,
    RECALCULATE_SHOP_TIERS,
    RECALCULATE_TIER,
    RELAY_OUTBOX,
    SEND_POINTS_EARNED_EMAIL,
    sync_task_name,
)
from workers.settings import RedeliverySettings, Settings, SideEffectSettings

_settings = Settings.from_environment()
_side_effects = SideEffectSettings.from_environment()
_redelivery = RedeliverySettings.from_environment()

ADJUSTMENTS_QUEUE = "loyalty.adjustments"
# Bulk chunks (merchant migrations) have their own queue and workers, so a migration of millions of
# customers never delays a live adjustment.
MIGRATIONS_QUEUE = "loyalty.migrations"
TIERS_QUEUE = "loyalty.tiers"
EMAILS_QUEUE = "loyalty.emails"
OUTBOX_QUEUE = "loyalty.outbox"
SYNC_QUEUES = {provider: f"loyalty.sync.{provider}" for provider in PROVIDERS}
# Side effects, one queue each, so one provider's outage delays nobody else.
SIDE_EFFECT_QUEUES = (TIERS_QUEUE, EMAILS_QUEUE, *SYNC_QUEUES.values(), OUTBOX_QUEUE)

# A message held by a worker that died is handed to another within LOYALTY_REDELIVERY_BOUND: on
# Redis after the visibility timeout, found by a sweep every restore interval; on RabbitMQ as soon
# as the connection drops. Nothing holds a message longer: tasks are limited to half the visibility
# timeout, and no message carries a countdown or an ETA (waits live on outbox rows).
VISIBILITY_TIMEOUT = _redelivery.visibility_timeout
TASK_TIME_LIMIT = _redelivery.task_time_limit

broker_url = _settings.broker_url
result_backend = _settings.result_backend

# JSON only: pickle is refused on the way in and never produced.
task_serializer = "json"
result_serializer = "json"
event_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

_is_rabbitmq = broker_url.startswith(("amqp", "pyamqp"))
_queue_arguments = {"x-queue-type": "quorum"} if _is_rabbitmq else None
task_queues = tuple(
    Queue(
        name,
        Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments=_queue_arguments,
    )
    for name in (ADJUSTMENTS_QUEUE, MIGRATIONS_QUEUE, *SIDE_EFFECT_QUEUES)
)
task_default_queue = ADJUSTMENTS_QUEUE
_task_queues = {
    "loyalty.adjust_points": ADJUSTMENTS_QUEUE,
    "loyalty.upsert_customer": ADJUSTMENTS_QUEUE,
    "loyalty.adjust_points_bulk": MIGRATIONS_QUEUE,
    RECALCULATE_TIER: TIERS_QUEUE,
    RECALCULATE_SHOP_TIERS: TIERS_QUEUE,
    SEND_POINTS_EARNED_EMAIL: EMAILS_QUEUE,
    RELAY_OUTBOX: OUTBOX_QUEUE,
    **{sync_task_name(provider): queue for provider, queue in SYNC_QUEUES.items()},
}
task_routes = {task: {"queue": queue, "routing_key": queue} for task, queue in _task_queues.items()}

# The relay re-publishes side effects whose message never left (or was lost); a relay message
# that waited longer than one interval is dropped, the next one does the same work.
beat_schedule = {
    "relay-outbox": {
        "task": RELAY_OUTBOX,
        "schedule": _side_effects.relay_interval,
        "options": {"expires": _side_effects.relay_interval},
    }
}
task_create_missing_queues = False
# Were a queue ever created on the fly, on RabbitMQ it must be a quorum queue like the others:
# a classic queue of the same name would keep every worker from starting.
task_create_missing_queue_type = "quorum" if _is_rabbitmq else "classic"

# Acknowledge after the work, requeue when a child dies or a hard time limit kills it; a task
# that raises is not requeued (its command is recorded, or it is a bug to look at).
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure = True
task_acks_on_timeout = False
worker_prefetch_multiplier = 1
# A task running when the broker connection drops finishes: every task is idempotent, and an email
# cancelled between its hand-over and the end of its data would be lost for good.
worker_cancel_long_running_tasks_on_connection_loss = False
task_time_limit = TASK_TIME_LIMIT
task_soft_time_limit = _redelivery.task_soft_time_limit

_network_broker_options = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "unacked_restore_interval": _redelivery.restore_interval,
    "unacked_restore_throttle": 1,
    # A worker killed during a restore sweep holds its mutex until this expires (kombu: 300 s).
    "unacked_mutex_expire": _redelivery.restore_interval,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 25,
    "retry_on_timeout": True,
    "max_retries": 5,
}
if broker_url.startswith(("redis://", "rediss://")):
    # kombu's Redis transport with a consume that records a message as it leaves its queue.
    broker_transport = "workers.redis_broker:Transport"
if _is_rabbitmq:
    broker_transport_options = {"confirm_publish": True, "max_retries": 5}
elif broker_url.startswith("sqla+"):
    # The embedded SQLite transport hands its options to create_engine(); it takes none of these.
    broker_transport_options = {}
else:
    broker_transport_options = _network_broker_options
result_backend_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT}
visibility_timeout = VISIBILITY_TIMEOUT
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
task_publish_retry = True
task_publish_retry_policy = {
    "max_retries": 5,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 3,
}

# Results: the database keeps every command's result for good; the backend only lets a publisher
# wait for one, so results expire there after a day.
result_expires = 24 * 3600
result_extended = False
task_ignore_result = False

# Every task message is checked before Celery's consumer trusts its shape: see workers.inbound.
worker_consumer = "workers.inbound:GuardedConsumer"
worker_soft_shutdown_timeout = 30.0
worker_enable_soft_shutdown_on_idle = True
worker_hijack_root_logger = False
worker_redirect_stdouts = False
