"""The short chaos run on each broker: nothing lost, nothing done twice, every balance and email
right, every command applied within the redelivery bound of the last fault.

Each run owns its PostgreSQL, SMTP server and Redis (or RabbitMQ vhost) and stops them at the end.
The full-size run is ``python -m bench.chaos`` (``make chaos``).
"""

from __future__ import annotations

import pytest

from tests.chaos.brokers import rabbitmq_available
from tests.chaos.report import render
from tests.chaos.scenario import SHORT, run_scenario

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

RUN_TIMEOUT = 240
"""The run bounds its own waits far below this; the timeout only guards against a harness bug."""


@pytest.mark.timeout(RUN_TIMEOUT)
@pytest.mark.parametrize(
    "broker",
    [
        "redis",
        pytest.param(
            "rabbitmq",
            marks=pytest.mark.skipif(
                not rabbitmq_available(), reason="needs a local RabbitMQ and rabbitmqctl"
            ),
        ),
    ],
)
def test_commands_and_emails_survive_crashes_exactly_once(broker: str) -> None:
    report = run_scenario(SHORT, broker)
    print(render([report]))
    assert report.problems() == [], render([report])
