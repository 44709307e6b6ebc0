#!/usr/bin/env bash
# Create .venv with Python 3.11+ and install the project (extras as arguments, e.g. "dev"), at the
# exact versions in constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python=""
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
  [ -n "$python" ] || { echo "Python 3.11 or newer is required" >&2; exit 1; }
  "$python" -m venv .venv
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --constraint constraints.txt pip
  .venv/bin/python -m pip install --quiet --constraint constraints.txt -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
