"""The Redis transport records a message as unacknowledged in the same step that takes it off its
queue, so a consumer that dies at any moment after the pop leaves it to the restore sweep."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.asynchronous import Hub

from tests.support.environment import TRANSPORT_REDIS_URL
from tests.support.tcp_proxy import TcpProxy
from workers.redis_broker import Channel

TRANSPORT = "workers.redis_broker:Transport"


def _queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


QUEUE = _queue("transport.test")
OTHER_QUEUE = _queue("transport.other")


@pytest.fixture
def server() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TRANSPORT_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _publish(body: dict[str, Any], queue: Queue = QUEUE, **options: Any) -> None:
    with Connection(TRANSPORT_REDIS_URL, transport_options=options) as connection:
        Producer(connection).publish(
            body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
        )


def _consume(count: int, queues: list[Queue] | None = None, **options: Any) -> list[Any]:
    """Receive ``count`` messages on an event loop, as the worker does, acknowledging each."""
    received: list[Any] = []
    hub = Hub()

    def on_message(body: Any, message: Any) -> None:
        received.append((body, message.delivery_info.get("redelivered", False)))
        message.ack()
        if len(received) == count:
            hub.stop()

    with (
        Connection(TRANSPORT_REDIS_URL, transport=TRANSPORT, transport_options=options) as conn,
        Consumer(conn, queues or [QUEUE], callbacks=[on_message]),
    ):
        conn.transport.register_with_event_loop(conn.connection, hub)
        hub.call_later(10, hub.stop)
        hub.run_forever()
    hub.close()
    return received


_DIE_AFTER_THE_POP = textwrap.dedent(
    f"""
    import os
    from kombu import Connection, Consumer, Exchange, Queue
    from workers.redis_broker import Transport

    # The moment kombu's own transport has popped the message but not yet recorded it.
    Transport._deliver = lambda self, message, queue: os._exit(9)
    name = {QUEUE.name!r}
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    with Connection({TRANSPORT_REDIS_URL!r}, transport=Transport) as connection:
        with Consumer(connection, [queue], callbacks=[lambda body, message: None]):
            connection.drain_events(timeout=10)
    """
)


def test_a_consumer_killed_right_after_the_pop_leaves_the_message_to_the_restore_sweep(
    server: redis.Redis,
) -> None:
    _publish({"command_id": "c-1"})

    died = subprocess.run(
        [sys.executable, "-c", _DIE_AFTER_THE_POP], cwd=os.getcwd(), capture_output=True, timeout=60
    )

    assert died.returncode == 9, died.stderr.decode()
    assert server.llen(QUEUE.name) == 0
    assert server.hlen("unacked") == 1
    assert server.zcard("unacked_index") == 1
    restored = _consume(
        1, visibility_timeout=0, unacked_restore_interval=0.1, unacked_restore_throttle=1
    )
    assert restored == [({"command_id": "c-1"}, True)]
    assert server.hlen("unacked") == 0
    assert server.zcard("unacked_index") == 0


def test_every_message_of_every_queue_is_delivered_once_and_acknowledged(
    server: redis.Redis,
) -> None:
    for n in range(5):
        _publish({"n": n})
        _publish({"other": n}, OTHER_QUEUE)

    received = _consume(10, [QUEUE, OTHER_QUEUE])

    assert sorted(map(repr, (body for body, _ in received))) == sorted(
        [repr({"n": n}) for n in range(5)] + [repr({"other": n}) for n in range(5)]
    )
    assert server.hlen("unacked") == 0


def test_the_acknowledgements_of_one_turn_of_the_event_loop_leave_together(
    server: redis.Redis,
) -> None:
    for n in range(20):
        _publish({"n": n})
    target = urlsplit(TRANSPORT_REDIS_URL)
    proxy = TcpProxy(target.port or 6379, reply_delay=0.05)
    held: list[Any] = []
    bursts: dict[str, int] = {}
    recorded: dict[str, int] = {}
    hub = Hub()

    def acknowledge_all() -> None:  # as Celery acknowledges a batch: callbacks of one turn
        recorded["before"] = int(server.hlen("unacked"))
        bursts["before"] = proxy.client_bursts
        for message in held:
            message.ack()
        recorded["meanwhile"] = int(server.hlen("unacked"))
        hub.call_soon(finish)

    def finish() -> None:  # the next turn: the last one ended by flushing its acknowledgements
        bursts["after"] = proxy.client_bursts
        hub.stop()

    def on_message(body: Any, message: Any) -> None:
        held.append(message)
        if len(held) == 20:
            hub.call_soon(acknowledge_all)

    try:
        proxied = target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        with (
            Connection(proxied, transport=TRANSPORT) as connection,
            Consumer(connection, [QUEUE], callbacks=[on_message]),
        ):
            connection.transport.register_with_event_loop(connection.connection, hub)
            hub.call_later(10, hub.stop)
            hub.run_forever()
    finally:
        hub.close()
        proxy.close()

    assert recorded == {"before": 20, "meanwhile": 20}
    # One each would be 20; the consumer's own poll may add one or two.
    assert bursts["after"] - bursts["before"] <= 4, bursts
    assert server.hlen("unacked") == 0
    assert server.zcard("unacked_index") == 0


def test_a_redis_that_forgot_the_script_is_given_it_again(server: redis.Redis) -> None:
    _publish({"n": 1})
    assert _consume(1) == [({"n": 1}, False)]
    server.script_flush()
    _publish({"n": 2})

    assert _consume(1) == [({"n": 2}, False)]


def test_the_global_key_prefix_applies_to_queues_and_the_unacked_records(
    server: redis.Redis,
) -> None:
    _publish({"n": 1}, global_keyprefix="loyalty:")
    assert server.llen(f"loyalty:{QUEUE.name}") == 1

    def keys_while_delivered(body: Any, message: Any) -> None:
        seen.update(key.decode() for key in server.keys("*unacked*"))
        message.ack()

    seen: set[str] = set()
    options = {"global_keyprefix": "loyalty:"}
    with (
        Connection(TRANSPORT_REDIS_URL, transport=TRANSPORT, transport_options=options) as conn,
        Consumer(conn, [QUEUE], callbacks=[keys_while_delivered]),
    ):
        conn.drain_events(timeout=10)

    assert seen == {"loyalty:unacked", "loyalty:unacked_index"}
    assert server.llen(f"loyalty:{QUEUE.name}") == 0


def test_an_idle_consumer_waits_on_the_doorbell_and_wakes_for_a_message(
    server: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = 0
    start_poll = Channel._brpop_start

    def counting(self: Channel, timeout: float | None = None) -> None:
        nonlocal polls
        before = self._in_poll
        start_poll(self, timeout)
        polls += bool(self._in_poll) and not before

    monkeypatch.setattr(Channel, "_brpop_start", counting)
    received: list[Any] = []
    hub = Hub()
    with Connection(TRANSPORT_REDIS_URL, transport=TRANSPORT) as connection:
        connection.transport.register_with_event_loop(connection.connection, hub)

        def on_message(body: Any, message: Any) -> None:
            received.append(body)
            message.ack()
            hub.stop()

        with Consumer(connection, [QUEUE], callbacks=[on_message]):
            hub.call_later(0.5, _publish, {"n": 1})
            hub.call_later(10, hub.stop)
            hub.run_forever()
    hub.close()

    assert received == [{"n": 1}]
    # Half a second idle: a poll and a doorbell wait of up to 100 ms (Redis rounds it to its hz)
    # at a time, about 10 commands; a busy loop sends thousands.
    assert polls < 30


def test_messages_that_ring_the_doorbell_together_arrive_in_the_order_they_were_sent(
    server: redis.Redis,
) -> None:
    envelopes = [_envelope({"n": n}) for n in range(5)]
    received: list[Any] = []
    hub = Hub()

    def on_message(body: Any, message: Any) -> None:
        received.append(body["n"])
        message.ack()
        if len(received) == 5:
            hub.stop()

    def publish_together() -> None:  # onto a queue whose consumer waits on its doorbell
        with server.pipeline() as pipe:
            for envelope in envelopes:
                pipe.lpush(QUEUE.name, envelope)
            pipe.execute()

    with (
        Connection(TRANSPORT_REDIS_URL, transport=TRANSPORT) as connection,
        Consumer(connection, [QUEUE], callbacks=[on_message], prefetch_count=1),
    ):
        connection.transport.register_with_event_loop(connection.connection, hub)
        hub.call_later(0.3, publish_together)
        hub.call_later(10, hub.stop)
        hub.run_forever()
    hub.close()

    assert received == [0, 1, 2, 3, 4]
    assert server.llen(QUEUE.name) == 0


def _envelope(body: dict[str, Any]) -> bytes:
    """What kombu's producer pushes for ``body`` (taken from a real publish)."""
    with Connection(TRANSPORT_REDIS_URL) as connection:
        Producer(connection).publish(
            body, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE]
        )
    with redis.Redis.from_url(TRANSPORT_REDIS_URL) as client:
        raw: bytes = client.rpop(QUEUE.name)  # type: ignore[assignment]
    return raw
