"""ruff format and ruff check, configured in pyproject.toml, are clean."""

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]])
def test_ruff(command):
    pytest.importorskip("ruff", reason="ruff is in the test extra")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
