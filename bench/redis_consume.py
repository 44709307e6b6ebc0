"""The cost of recording each message as it is popped: the worker's Redis transport against
kombu's own, side by side.

Both drain the same pre-queued messages through a kombu consumer on an event loop, as the worker's
main process does (acknowledging each at once, no Celery, no task): kombu's pops with BRPOP and
records with a second round trip, ours pops and records in one Lua script. Rounds alternate
(ours, kombu, kombu, ours, ...) so that both see the same machine.

    .venv/bin/python -m bench.redis_consume [--messages 20000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.asynchronous import Hub

BROKER = "redis://127.0.0.1:6379/13"
QUEUE = Queue(
    "bench.consume", Exchange("bench.consume", type="direct"), routing_key="bench.consume"
)
TRANSPORTS = {"recording (ours)": "workers.redis_broker:Transport", "kombu BRPOP": "redis"}
BODY = {"command_id": "bench", "shop_id": "bench-shop", "customer_id": "c", "adjustment": 1}


def fill(count: int) -> None:
    with Connection(BROKER) as connection:
        producer = Producer(connection)
        for _ in range(count):
            producer.publish(
                BODY, exchange=QUEUE.exchange, routing_key="bench.consume", declare=[QUEUE]
            )


def drain(transport: str, count: int) -> float:
    """Seconds to receive and acknowledge ``count`` messages."""
    hub = Hub()
    received = 0

    def on_message(_: object, message: object) -> None:
        nonlocal received
        message.ack()  # type: ignore[attr-defined]
        received += 1
        if received == count:
            hub.stop()

    with Connection(BROKER, transport=transport) as connection:
        connection.transport.register_with_event_loop(connection.connection, hub)
        with Consumer(connection, [QUEUE], callbacks=[on_message], prefetch_count=1):
            started = time.perf_counter()
            hub.run_forever()
            elapsed = time.perf_counter() - started
    hub.close()
    assert received == count, f"{transport} received {received} of {count}"
    return elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_consume")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    per_round = args.messages // args.rounds
    totals = dict.fromkeys(TRANSPORTS, 0.0)
    redis.Redis.from_url(BROKER).flushdb()
    order = list(TRANSPORTS)
    for round_number in range(args.rounds):
        for name in order if round_number % 2 == 0 else reversed(order):
            fill(per_round)
            seconds = drain(TRANSPORTS[name], per_round)
            totals[name] += seconds
            print(f"round {round_number + 1}: {name:18} {per_round / seconds:8.0f} messages/s")
    rates = {name: per_round * args.rounds / seconds for name, seconds in totals.items()}
    print()
    for name, rate in rates.items():
        print(f"{name:18} {rate:8.0f} messages/s over {per_round * args.rounds} messages")
    ours, kombus = rates["recording (ours)"], rates["kombu BRPOP"]
    print(f"ours / kombu = {ours / kombus:.2f}")
    leftover = redis.Redis.from_url(BROKER)
    print(f"left in unacked: {leftover.hlen('unacked')} (0 expected)")


if __name__ == "__main__":
    main()
