"""The code style of pyproject.toml's [tool.ruff]: its lint rules and its formatting, on every Python file."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    """Run the venv's ruff in the checkout."""
    command = Path(sys.executable).with_name("ruff")
    if not command.exists():
        pytest.fail("ruff is missing: `make test` installs it (requirements-dev.txt)")
    return subprocess.run([str(command), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_finds_nothing():
    done = ruff("check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_every_file_is_formatted():
    done = ruff("format", "--check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
