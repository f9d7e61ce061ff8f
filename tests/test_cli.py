"""The console command exists and answers --help and --version."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from chemactor import __version__
from chemactor.cli import app


def test_version_and_help():
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.strip() == f"chemactor {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "--version" in result.output


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "chemactor.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout
