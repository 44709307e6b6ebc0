"""docker-compose.yml is not run here (no Docker engine); check what can be checked without it:
every command line parses as the real CLI parses it, the queues exist, healthchecks gate the start
order, Flower keeps its login, and the environment is documented and passed with true defaults."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from collections.abc import Iterator
from typing import Any

import click
import pytest
import yaml
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from click.testing import CliRunner

import celeryconfig
from workers.cli.main import main as loyalty_cli
from workers.outbound.providers import PROVIDERS
from workers.process import ROOT

COMPOSE = ROOT / "docker-compose.yml"
APP_SOURCES = [ROOT / "celeryconfig.py", *(ROOT / d for d in ("models", "tasks", "workers"))]
WORKERS = {"worker", "migrations", "side-effects"}
LONG_RUNNING = WORKERS | {"beat", "flower", "mailpit", "postgres", "redis"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def parse_celery(command: list[str]) -> click.Context:
    """Parse ``celery -A module SUBCOMMAND ...`` exactly as the celery CLI would, without running
    it: unknown options, bad values and unknown subcommands raise."""
    assert command[:2] == ["celery", "-A"], command
    module = importlib.import_module(command[2])
    parent = click.Context(
        celery_cli, obj=CLIContext(app=module.app, no_color=True, workdir=None, quiet=True)
    )
    subcommand = celery_cli.get_command(parent, command[3])
    assert subcommand is not None, f"celery has no subcommand {command[3]!r}"
    return subcommand.make_context(command[3], command[4:], parent=parent)


def app_variables() -> set[str]:
    """Every LOYALTY_* variable the application reads (a quoted name in its source)."""
    found: set[str] = set()
    for source in APP_SOURCES:
        for path in [source] if source.is_file() else source.rglob("*.py"):
            found |= set(re.findall(r"[\"'](LOYALTY_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


def test_the_stack_has_its_services(services: dict[str, Any]) -> None:
    assert {"migrate", *LONG_RUNNING} <= set(services)


def test_every_app_command_names_a_real_entry_point(services: dict[str, Any]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, service in services.items():
        if service.get("build") is None:
            continue
        command = command_of(service)
        if command[0] == "celery":
            parse_celery(command)
        else:
            assert command[0] in scripts, name
            help_result = CliRunner().invoke(loyalty_cli, [*command[1:], "--help"])
            assert help_result.exit_code == 0, (name, help_result.output)


def test_a_bad_command_line_would_be_caught() -> None:
    with pytest.raises(click.UsageError):
        parse_celery(["celery", "-A", "workers.app", "worker", "-l", "loud"])
    with pytest.raises(click.UsageError):
        parse_celery(["celery", "-A", "workers.app", "worker", "--queue-size", "3"])


def test_every_worker_consumes_configured_queues_and_sends_events(
    services: dict[str, Any],
) -> None:
    declared = set(celeryconfig.queues(PROVIDERS))
    served: set[str] = set()
    for name in WORKERS:
        params = parse_celery(command_of(services[name])).params
        assert set(params["queues"]) <= declared, name
        assert params["task_events"] is True, f"{name} needs -E for Flower to see its tasks"
        served |= set(params["queues"])

    assert served == declared


def test_the_migrations_worker_consumes_loyalty_migrations_only(services: dict[str, Any]) -> None:
    params = parse_celery(command_of(services["migrations"])).params

    assert params["queues"] == ["loyalty.migrations"]
    assert params["hostname"].startswith("migrations@")
    for name in WORKERS - {"migrations"}:
        assert "loyalty.migrations" not in option(command_of(services[name]), "-Q"), name


def test_the_worker_consumes_the_adjustments_queue_after_migrating(
    services: dict[str, Any],
) -> None:
    worker = services["worker"]
    assert option(command_of(worker), "-Q") == "loyalty.adjustments"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["environment"]["LOYALTY_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert worker["environment"]["LOYALTY_BROKER_URL"].startswith("redis://")


def test_redis_keeps_commands_across_restarts_and_never_evicts(services: dict[str, Any]) -> None:
    command = " ".join(command_of(services["redis"]))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        test = services[name].get("healthcheck", {}).get("test", [None])
        assert test[0] in ("CMD", "CMD-SHELL"), name
    assert "healthcheck" not in services["migrate"]  # it exits; it is waited for instead


def test_each_worker_healthcheck_pings_that_worker(services: dict[str, Any]) -> None:
    for name in WORKERS:
        command = command_of(services[name])
        kind, check = services[name]["healthcheck"]["test"]
        # Compose turns $$ into $; the shell then expands HOSTNAME, which %h stands for.
        ping = shlex.split(check.replace("$$HOSTNAME", "host-1"))

        assert kind == "CMD-SHELL"
        params = parse_celery(ping).params
        assert params["command"] == "ping"
        assert params["destination"] == [option(command, "-n").replace("%h", "host-1")], name


def test_flower_and_mailpit_are_checked_over_http(services: dict[str, Any]) -> None:
    flower = " ".join(services["flower"]["healthcheck"]["test"])

    assert "--port=5555" in command_of(services["flower"])
    assert "http://127.0.0.1:5555/healthcheck" in flower
    assert services["mailpit"]["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]


def dependencies(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    depends_on = service.get("depends_on", {})
    assert isinstance(depends_on, dict), "depends_on must name a condition for each service"
    for name, rule in depends_on.items():
        yield name, rule["condition"]


def test_health_gates_the_start_order(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for needed, condition in dependencies(service):
            if "healthcheck" in services[needed]:
                assert condition == "service_healthy", (name, needed)
            else:
                assert condition == "service_completed_successfully", (name, needed)
                assert services[needed].get("restart") == "no", needed
    for name in WORKERS | {"beat"}:
        conditions = dict(dependencies(services[name]))
        assert conditions["migrate"] == "service_completed_successfully", name
        assert conditions["redis"] == "service_healthy", name
    assert dict(dependencies(services["migrate"])) == {"postgres": "service_healthy"}
    assert dict(dependencies(services["side-effects"]))["mailpit"] == "service_healthy"


def test_flower_requires_a_login_and_cannot_read_stored_results(
    services: dict[str, Any],
) -> None:
    flower = services["flower"]
    argv = parse_celery(command_of(flower)).params["tornado_argv"]
    from flower.options import options as flower_options

    names = [argument.lstrip("-").split("=", 1)[0] for argument in argv]
    assert all(name in flower_options for name in names), names
    [login] = [a.split("=", 1)[1] for a in argv if a.startswith("--basic-auth=")]
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:-[^:}]+:[^}]+\}", login), login
    assert "FLOWER_UNAUTHENTICATED_API" not in str(flower)
    assert flower["environment"]["LOYALTY_RESULT_BACKEND"] == "disabled"
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_every_variable_the_app_reads_is_documented(compose: dict[str, Any]) -> None:
    header = COMPOSE.read_text().split("\nx-loyalty-env:", 1)[0]
    readme = (ROOT / "README.md").read_text()
    variables = app_variables()

    assert {"LOYALTY_DATABASE_URL", "LOYALTY_SECRET_KEY", "LOYALTY_SMTP_HOST"} <= variables
    assert [name for name in sorted(variables) if name not in header] == []
    assert [name for name in sorted(variables) if f"`{name}`" not in readme] == []
    passed = set(compose["x-loyalty-env"])
    assert variables - passed == {"LOYALTY_DATA_DIR", "LOYALTY_PROVIDER_API_KEY"}


# Defaults that are the stack's own choice rather than the application's.
STACK_CHOICES = {"LOYALTY_SMTP_HOST", "LOYALTY_SMTP_PORT", "LOYALTY_SECRET_KEY"}


def test_the_defaults_passed_to_the_app_are_the_apps_own(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.settings import Settings

    def read_settings() -> tuple[Any, ...]:
        return (Settings.from_environment(),)

    env = compose["x-loyalty-env"]
    checked = []
    for name, value in env.items():
        default = re.fullmatch(rf"\$\{{{name}:-(.*)\}}", value)
        if default is None or name in STACK_CHOICES:
            continue
        with monkeypatch.context() as patch:
            for other in env:
                patch.delenv(other, raising=False)
            patch.setenv("LOYALTY_BROKER_URL", env["LOYALTY_BROKER_URL"])
            unset = read_settings()
            patch.setenv(name, default.group(1))
            assert read_settings() == unset, f"{name}'s default in docker-compose.yml"
        checked.append(name)

    assert len(checked) >= 15
