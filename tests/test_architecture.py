"""The import rules of README's "How it is built", as import-linter contracts in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    """Run the venv's `lint-imports` on the package and pyproject.toml in `where`."""
    command = Path(sys.executable).with_name("lint-imports")
    if not command.exists():
        pytest.fail("lint-imports is missing: `make test` installs it (requirements-dev.txt)")
    env = {"PATH": str(command.parent), "PYTHONPATH": str(where), "HOME": str(where)}
    return subprocess.run([str(command), "--no-cache"], cwd=where, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_every_contract():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("analysis/result.py", "import plotly.graph_objects", "no figure, table or page library"),
        ("views/tables.py", "from visualizer.service import page", "One-way flow"),
        ("service/page.py", "import gradio", "Only the page imports gradio"),
        ("model/tokens.py", "from visualizer.analysis import one_pass", "One-way flow"),
    ],
)
def test_a_wrong_import_breaks_a_contract(tmp_path, module, line, contract):
    """The same check on a copy with one import that goes the wrong way: lint-imports fails and names it."""
    shutil.copytree(ROOT / "visualizer", tmp_path / "visualizer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "visualizer" / module
    target.write_text(target.read_text() + f"\n{line}  # the wrong way\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "Broken contracts" in done.stdout, done.stdout[-3000:]
    assert contract in done.stdout.split("Broken contracts", 1)[1], done.stdout[-3000:]
