"""The type hints of the whole package and app.py, checked by mypy with pyproject.toml's [tool.mypy]."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One mypy cache for this module's runs, outside the checkout: torch and transformers are read once."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(cache: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the venv's mypy in `cwd`, with the config it finds there."""
    command = Path(sys.executable).with_name("mypy")
    if not command.exists():
        pytest.fail("mypy is missing: `make test` installs it (requirements-dev.txt)")
    return subprocess.run(
        [str(command), "--cache-dir", str(cache)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_package_type_checks(cache):
    done = mypy(cache)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_a_type_error_fails_the_check(cache, tmp_path):
    """The check can fail, in the UI layer too: the same config on a copy where a function returns the wrong type."""
    for name in ("pyproject.toml", "app.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "visualizer", tmp_path / "visualizer", ignore=shutil.ignore_patterns("__pycache__"))
    shared = tmp_path / "visualizer" / "ui" / "shared.py"
    shared.write_text(
        shared.read_text() + '\n\ndef _wrong() -> int:\n    """Deliberately mistyped."""\n    return "x"\n'
    )
    done = mypy(cache, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-1000:]
    assert "visualizer/ui/shared.py" in done.stdout and "[return-value]" in done.stdout
