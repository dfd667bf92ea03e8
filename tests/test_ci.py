"""CI fails when a test fails and when no test is collected: the real .ci/run, pointed at a folder.

.ci/run calls `make test`, which reads PYTEST_ARGS from the environment; the test gives it a
temporary folder holding one test (or none), never the whole suite.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

FAILING = "def test_fails():\n    assert 1 + 1 == 3\n"
PASSING = "def test_passes():\n    assert 1 + 1 == 2\n"


def run_ci(folder: Path) -> subprocess.CompletedProcess:
    """Run .ci/run with pytest pointed at `folder`; pip may not reach an index (the install is stamped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    env |= {"PYTEST_ARGS": f"-p no:cacheprovider {folder}", "PIP_NO_INDEX": "1"}
    return subprocess.run([str(ROOT / ".ci" / "run")], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("files", "ok", "summary"),
    [
        ({"test_one.py": FAILING}, False, "1 failed"),
        ({}, False, "no tests ran"),
        ({"notes.txt": PASSING}, False, "no tests ran"),
        ({"test_one.py": PASSING}, True, "1 passed"),
    ],
    ids=["failing-test", "empty-folder", "no-test-files", "passing-test"],
)
def test_ci_exit_status_follows_pytest(tmp_path, files, ok, summary):
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    proc = run_ci(tmp_path)
    output = proc.stdout + proc.stderr
    stale = "\n(setup.sh installed something: after editing what it hashes, run `make test` once to stamp it)"
    assert summary in output, output[-3000:] + stale
    assert (proc.returncode == 0) is ok, f"exit {proc.returncode}\n{output[-3000:]}"
