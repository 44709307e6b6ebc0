#!/usr/bin/env bash
# Refresh constraints.txt: resolve the project's dependencies (every extra) afresh in a
# throwaway virtualenv and write down the exact versions. Run the test command afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install --quiet --upgrade pip
"$scratch/venv/bin/python" -m pip install --quiet ".[dev,ops]"
{
  echo "# Exact versions the set-up commands install (pip -c). Refresh on purpose with scripts/lock.sh,"
  echo "# run the test command, and commit the result; never by whatever the registry serves that day."
  "$scratch/venv/bin/python" -m pip freeze --all --exclude-editable |
    grep -v -i -e '^loyalty-points-worker' -e '^setuptools=' -e '^wheel='
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins"
