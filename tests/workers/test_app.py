"""How the app tells which celery command it was loaded for."""

from __future__ import annotations

import pytest

from workers.app import celery_subcommand


@pytest.mark.parametrize(
    ("argv", "subcommand"),
    [
        (["/venv/bin/celery", "-A", "workers.app", "flower", "--port=5555"], "flower"),
        (
            ["/usr/lib/python3/site-packages/celery/__main__.py", "-A", "workers.app", "flower"],
            "flower",
        ),
        (["celery", "--app=workers.app", "-q", "flower"], "flower"),
        (["celery", "-b", "redis://flower:6379/0", "-A", "workers.app", "worker"], "worker"),
        (["celery", "-A", "workers.app", "worker", "-n", "flower", "-Q", "flower"], "worker"),
        (["celery", "--workdir", "flower", "-A", "workers.app", "inspect", "ping"], "inspect"),
        (["/venv/bin/loyalty", "flower"], None),
        (["pytest", "tests"], None),
        ([], None),
    ],
)
def test_the_subcommand_is_the_first_argument_past_celerys_own_options(
    argv: list[str], subcommand: str | None
) -> None:
    assert celery_subcommand(argv) == subcommand
