"""docker-compose.yml is not run here (no Docker engine); check what can be checked without it."""

from __future__ import annotations

import importlib
import shlex
import tomllib
from typing import Any

import pytest
import yaml

from workers.process import ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    assert {
        "postgres",
        "redis",
        "migrate",
        "worker",
        "side-effects",
        "beat",
        "flower",
        "mailpit",
    } <= set(compose["services"])


def test_every_app_command_names_a_real_entry_point(compose: dict[str, Any]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, service in compose["services"].items():
        if service.get("build") is None:
            continue
        command = command_of(service)
        if command[0] == "celery":
            module = command[command.index("-A") + 1]
            assert hasattr(importlib.import_module(module), "app"), name
        else:
            assert command[0] in scripts, name
            from click.testing import CliRunner

            from workers.cli import main

            help_result = CliRunner().invoke(main, [*command[1:], "--help"])
            assert help_result.exit_code == 0, (name, help_result.output)


def test_the_worker_consumes_the_adjustments_queue_after_migrating(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["worker"]
    command = command_of(worker)
    assert command[command.index("-Q") + 1] == "loyalty.adjustments"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["environment"]["LOYALTY_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert worker["environment"]["LOYALTY_BROKER_URL"].startswith("redis://")


def test_redis_keeps_commands_across_restarts_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(command_of(redis))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "healthcheck" in redis
    assert "healthcheck" in compose["services"]["postgres"]


def test_flower_requires_a_login(compose: dict[str, Any]) -> None:
    command = command_of(compose["services"]["flower"])
    assert any(part.startswith("--basic-auth=") for part in command)


def test_side_effect_queues_and_the_relay_are_served(compose: dict[str, Any]) -> None:
    import celeryconfig

    command = command_of(compose["services"]["side-effects"])
    queues = set(command[command.index("-Q") + 1].split(","))
    beat = command_of(compose["services"]["beat"])

    assert queues == set(celeryconfig.SIDE_EFFECT_QUEUES)
    assert beat[:4] == ["celery", "-A", "workers.app", "beat"]
    env = compose["services"]["side-effects"]["environment"]
    assert env["LOYALTY_SMTP_HOST"].endswith("mailpit}")
    assert "LOYALTY_SECRET_KEY" in env
