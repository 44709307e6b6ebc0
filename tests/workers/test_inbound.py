"""What the worker tells an operator when RabbitMQ refuses its queue declaration."""

from __future__ import annotations

from workers.inbound import queue_type_advice

REFUSAL = (
    "Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue "
    "'loyalty.adjustments' in vhost 'shop-east': received the value 'quorum' of type 'longstr' "
    "but current is none"
)


def test_a_queue_of_another_type_gets_the_steps_that_fix_it() -> None:
    advice = queue_type_advice(REFUSAL)

    assert advice is not None
    assert "'loyalty.adjustments' (vhost 'shop-east')" in advice
    assert "rabbitmqctl delete_queue loyalty.adjustments --vhost shop-east" in advice
    assert "x-queue-type: quorum" in advice


def test_any_other_refusal_gets_no_advice() -> None:
    other = "Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q'"

    assert queue_type_advice(other) is None
