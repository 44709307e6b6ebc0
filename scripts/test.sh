#!/usr/bin/env bash
# The whole check from a fresh clone: virtualenv, packages, servers, lint, types, the import
# contract (pyproject.toml), tests.
# The tests build their own database with the Alembic migration.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh dev
scripts/ensure-services.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/pytest "$@"
