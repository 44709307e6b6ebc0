"""A worker started with ``-I tests.support.planted_bug`` has a bug planted in its engine: planning
a command whose id starts with ``PLANTED`` raises. Importing this module elsewhere plants
nothing."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init

PLANTED = "planted-bug-"


@worker_init.connect
def _plant(**_: Any) -> None:
    from models.domain import parsing, planner

    real_apply = planner._Planner.apply

    def apply_with_a_bug(self: Any, item: parsing.ParsedItem) -> dict[str, Any]:
        if item.command is not None and item.command.command_id.startswith(PLANTED):
            raise ZeroDivisionError("planted")
        return real_apply(self, item)

    planner._Planner.apply = apply_with_a_bug  # type: ignore[method-assign]
