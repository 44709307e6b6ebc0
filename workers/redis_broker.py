"""The Redis broker transport: kombu's, with a consume that cannot lose a message.

kombu takes a message off its queue with BRPOP and only then records it as unacknowledged (HSET):
a worker killed between the two, or a Redis that dies between them, loses the message for good.
Here one Lua script pops the message and records it in kombu's own unacked hash and index, so from
the moment it leaves its queue it is either acknowledged or restored by the visibility-timeout
sweep.

A script cannot block as BRPOP does. Once the queues are empty (the script says how many
messages they still hold after its pop), the consumer waits on a doorbell instead:
``BLMOVE key key RIGHT RIGHT`` on the first queue's list blocks until the list holds a message
and then moves its last element to where it already is, so it takes nothing and reorders nothing,
and the next poll follows at once. It gives up after ``idle_poll_interval`` seconds (Redis rounds
blocking timeouts to its ``hz``: 100 ms by default), so a message for any other queue or priority
waits at most that long on an idle worker.

Driven by an event loop, acknowledgements leave together at the end of each turn of the loop (see
``Transport``). Celery uses it through ``broker_transport`` (see ``celeryconfig``); publishers
need nothing from it, they still LPUSH.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic, sleep, time
from typing import Any

from kombu.transport import redis, virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import NoScriptError, ResponseError

from workers.pii import mask_text

logger = logging.getLogger(__name__)

# KEYS: the unacked index and hash, then the queues in the order BRPOP would try them.
# ARGV[1]: the time recorded in the index, as kombu records it (the consumer's clock).
# The stored entry is kombu's ``[payload, exchange, routing_key]``, with the payload kept verbatim.
# A message kombu could not record either (not JSON, no delivery tag) is returned unrecorded, so
# the consumer handles it exactly as kombu does. The reply also says how many messages the queues
# still hold: when none, the consumer goes straight to the doorbell, without a poll that would
# only find them empty.
_POP_AND_RECORD = """
local function left()
  local count = 0
  for j = 3, #KEYS do
    count = count + redis.call('LLEN', KEYS[j])
  end
  return count
end
for i = 3, #KEYS do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local ok, message = pcall(cjson.decode, item)
    if ok and type(message) == 'table' and type(message.properties) == 'table' then
      local tag = message.properties.delivery_tag
      local info = message.properties.delivery_info
      if type(tag) == 'string' and type(info) == 'table'
          and type(info.exchange) == 'string' and type(info.routing_key) == 'string' then
        redis.call('ZADD', KEYS[1], ARGV[1], tag)
        redis.call('HSET', KEYS[2], tag, '[' .. item .. ',' .. cjson.encode(info.exchange)
          .. ',' .. cjson.encode(info.routing_key) .. ']')
        return {KEYS[i], item, 1, left()}
      end
    end
    return {KEYS[i], item, 0, left()}
  end
end
return false
"""


class MalformedEnvelope(Exception):
    """A message kombu cannot even read as a message (not a JSON object, no delivery tag, a body
    that does not decode as its encoding says)."""


class CheckedMessage(virtual.Message):
    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        try:
            super().__init__(payload, channel=channel, **kwargs)
        except Exception as error:
            raise MalformedEnvelope(repr(error)[:200]) from error


class RecordedQoS(redis.QoS):
    channel: Channel
    _remove_from_indices: Callable[..., Any]  # kombu's, left out of its type stubs
    _unflushed: list[str] | None = None
    """Acknowledged delivery tags whose records Redis still holds (see ``Transport``)."""

    def ack(self, delivery_tag: str) -> None:
        if not self.channel.connection.acks_per_tick:
            super().ack(delivery_tag)
            return
        if self._unflushed is None:
            self._unflushed = []
        self._unflushed.append(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def flush_acks(self) -> None:
        """Remove the records of every acknowledgement since the last flush, in one pipeline.
        Should it fail, those messages stay recorded and the visibility sweep brings them back
        (every task is idempotent), as with any acknowledgement Redis never got."""
        tags, self._unflushed = self._unflushed, None
        if not tags:
            return
        try:
            with self.channel.conn_or_acquire() as client:
                pipeline = client.pipeline(transaction=False)
                for tag in tags:
                    self._remove_from_indices(tag, pipeline)
                pipeline.execute()
        except Exception:  # like kombu's ack_log_error: logged, never raised into the loop
            logger.warning(
                "%d acknowledgements not recorded; redelivered later", len(tags), exc_info=True
            )

    def append(self, message: Any, delivery_tag: str) -> None:
        if delivery_tag == self.channel.recorded_tag:
            # The consume script already wrote what kombu would write here.
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)


class Channel(redis.Channel):
    QoS = RecordedQoS
    Message = CheckedMessage

    # kombu's members this class builds on that its type stubs leave out.
    connection: Transport
    qos: RecordedQoS
    _qos: RecordedQoS | None
    connection_errors: tuple[type[Exception], ...]
    _queue_cycle: Any
    _in_poll: Any
    _brpop_sent_at: float | None
    _q_for_pri: Callable[[str, int], str]
    _flush_brpop_reauth: Callable[[], None]

    #: How long an idle consumer waits on the doorbell before it polls every queue again.
    idle_poll_interval = 0.1
    from_transport_options = (*redis.Channel.from_transport_options, "idle_poll_interval")

    #: The delivery tag of the message being delivered, when the script recorded it.
    recorded_tag: str | None = None
    _script_sha: str | None = None
    #: Whether the last poll found every queue empty, so the next command is the doorbell.
    _idle = False
    #: The command whose reply the poll connection awaits: "EVALSHA" or "BLMOVE".
    _awaiting = "EVALSHA"

    @property
    def supports_batch_publish(self) -> bool:
        """kombu turns publish batches off under ``retry_on_timeout``: a pipeline sent again after
        a timeout may publish some of its messages twice. Every message this project publishes
        may arrive twice (a command is keyed by its id, a side effect by its outbox row), and one
        round trip for a batch's side effects is worth having."""
        return True

    def close(self) -> None:
        if self._qos is not None:  # kombu creates it on first use
            self._qos.flush_acks()
        super().close()

    def _brpop_start(self, timeout: float | None = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        prefix = self.global_keyprefix
        connection = self.client.connection
        if self._idle:
            doorbell = prefix + self._q_for_pri(queues[0], 0)
            command: tuple[Any, ...] = ("BLMOVE", doorbell, doorbell, "RIGHT", "RIGHT")
            command += (self.idle_poll_interval,)
        else:
            if self._script_sha is None:
                self._script_sha = self.client.script_load(_POP_AND_RECORD)
            queue_keys = [self._q_for_pri(q, pri) for pri in self.priority_steps for q in queues]
            keys = [prefix + key for key in (self.unacked_index_key, self.unacked_key, *queue_keys)]
            command = ("EVALSHA", self._script_sha, len(keys), *keys, time())
        self._awaiting = command[0]
        self._in_poll = connection
        self._brpop_sent_at = monotonic()
        connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> bool:
        try:
            reply = self._read_poll_reply(**options)
            if self._awaiting == "BLMOVE" or not reply:
                # After the doorbell, rung or timed out, poll every queue; after an empty poll,
                # wait on the doorbell.
                self._idle = self._awaiting == "EVALSHA"
                raise virtual.Empty()
            key, item, recorded, left = reply
            queue = bytes_to_str(key)[len(self.global_keyprefix) :].rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            self._idle = left == 0
            self._deliver_popped(queue, item, recorded)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _deliver_popped(self, queue: str, item: bytes, recorded: int) -> None:
        try:
            message = loads(bytes_to_str(item))
        except ValueError as error:
            return self._drop(queue, item, error, None)
        tag = message["properties"]["delivery_tag"] if recorded else None
        self.recorded_tag = tag
        try:
            self.connection._deliver(message, queue)
        except MalformedEnvelope as error:
            self._drop(queue, item, error, tag)
        finally:
            self.recorded_tag = None
        return None

    def _drop(self, queue: str, item: bytes, error: Exception, tag: str | None) -> None:
        """A message that can never be consumed: requeued, it would stop the next worker too."""
        shown = mask_text(repr(item[:300]))
        logger.error(
            "Dropped a message from %s that is not a kombu message (%s): %s", queue, error, shown
        )
        if tag is not None:
            self.qos._remove_from_indices(tag).execute()

    def _read_poll_reply(self, **options: Any) -> Any:
        connection = self.client.connection
        try:
            return self.client.parse_response(connection, self._awaiting, **options)
        except self.connection_errors:
            # Disconnect so that the next poll reconnects.
            connection.disconnect()
            raise
        except NoScriptError:
            # Redis restarted and forgot the script: load it again before the next poll.
            self._script_sha = None
            raise virtual.Empty() from None
        except ResponseError:
            # Such as a full Redis refusing writes: nothing was popped. The consumer cannot take
            # anything until Redis recovers, so it pauses, on purpose, before it tries again.
            logger.warning(
                "Redis refused the %s of a poll; again in 1 s", self._awaiting, exc_info=True
            )
            self._idle = False
            sleep(1.0)
            raise virtual.Empty() from None


class Transport(redis.Transport):
    """Driven by an event loop (the worker's consumer), acknowledgements wait for the end of the
    loop's turn and leave together: Celery acknowledges a finished batch's messages one by one,
    each in a callback of that turn, and one round trip for all of them saves the main process
    a round trip per message. Without a loop, each acknowledgement is sent at once."""

    Channel = Channel
    acks_per_tick = False

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        super().register_with_event_loop(connection, loop)
        self.acks_per_tick = True
        loop.on_tick.add(self.flush_acks)

    def flush_acks(self) -> None:
        channels: list[Channel] = self.channels or []  # type: ignore[assignment]
        for channel in channels:
            if channel._qos is not None:  # a channel that never consumed has none
                channel._qos.flush_acks()
