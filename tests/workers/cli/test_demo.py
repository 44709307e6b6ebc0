"""The README's run command: the demo on the embedded default, with no server at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.process import ROOT

pytestmark = pytest.mark.e2e


def test_the_demo_runs_on_sqlite_with_no_servers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["PYTHONPATH"] = str(ROOT)

    finished = subprocess.run(
        [sys.executable, "-m", "workers.cli.main", "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip

    output = finished.stdout
    assert finished.returncode == 0, output + finished.stderr
    assert (tmp_path / ".loyalty" / "loyalty.sqlite3").exists()
    assert "applied +500 (asked +500): 0 -> 500" in output
    assert output.count("transaction ") >= 5
    assert "applied -500 (asked -800): 500 -> 0" in output
    assert "rejected insufficient_points (422)" in output
    assert "rejected revision_conflict (409)" in output
    assert "rejected customer_not_found (404)" in output
    assert "rejected invalid_command (400)" in output
    assert "Account bob: balance 1000, lifetime 1000, revision 2" in output
