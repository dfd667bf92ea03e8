"""The command line prints the same bytes as before the package moved into folders (commit 5b3fc5a, issue 15).

Both versions run in fresh interpreters on the tiny models, each importing its own copy of the package
(the old one unpacked from git into tmp_path), over texts with emoji, CJK, markup, masking and BOS; their
stdout must be equal byte for byte, once the one field added since is taken out: the JSON contract's
`"backend": "transformers"` (issue 17: an engine's results say "vllm"). Needs git and this repository's
history; skipped without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BEFORE = "5b3fc5a"
"""The last commit with the flat layout."""

TEXTS = ["the dog likes food", "café naïve 日本語 😀 and 🇫🇷", "<b>x</b> &amp; %{x}\n\tend", "Q: 2+2? A: 4"]
RUNS = [
    ["analyze", *TEXTS, "--format", "json"],
    ["analyze", *TEXTS, "--format", "json", "--bos", "--top-k", "3"],
    ["analyze", *TEXTS, "--format", "json", "--mask-first", "2", "--no-sentence-vocab"],
    ["analyze", TEXTS[3], TEXTS[1], "--format", "json", "--mask-until", "A:"],
    ["analyze", *TEXTS, "--format", "csv", "--bos"],
    ["analyze", *TEXTS],
    ["analyze", "", "--format", "json"],
    ["generate", TEXTS[1], "--max-new-tokens", "4", "--format", "json"],
    ["generate", "the dog", "--max-new-tokens", "3", "--temperature", "0.8", "--top-p", "0.9", "--seed", "1"],
    ["lens", TEXTS[1], "--format", "json", "--bos"],
    ["lens", "the dog likes food"],
]
DRIVER = """
import io, json, sys
import visualizer
from visualizer.cli import main
assert visualizer.__file__.startswith(sys.argv[1]), visualizer.__file__
results = []
for argv in json.load(sys.stdin):
    out = io.StringIO()
    try:
        status = main(argv, out=out)
    except SystemExit as exc:
        status = exc.code
    results.append([status, out.getvalue()])
sys.stdout.buffer.write(json.dumps(results, ensure_ascii=True).encode())
"""


def _old_package(tmp_path: Path) -> Path:
    """The package as it was at BEFORE, unpacked into tmp_path (skips when git or that commit is missing)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot read the pre-move package from history")
    found = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{BEFORE}^{{commit}}"], capture_output=True)
    if found.returncode != 0:
        pytest.skip(f"not a git checkout with commit {BEFORE} (e.g. a shallow clone or an unpacked archive)")
    archive = tmp_path / "before.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), BEFORE, "visualizer"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "before", filter="data")
    return tmp_path / "before"


def _outputs(checkout: Path, runs: list[list[str]]) -> list:
    """[status, stdout] of each run of the CLI whose package lives in `checkout`, in one fresh interpreter."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(checkout)],
        cwd=checkout,
        input=json.dumps(runs),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_cli_prints_the_same_bytes_as_before_the_move(tmp_path, tiny_gpt2_dir, tiny_llama_dir):
    runs = [[*argv, "--model", model] for model in (str(tiny_gpt2_dir), str(tiny_llama_dir)) for argv in RUNS]
    before, after = _outputs(_old_package(tmp_path), runs), _outputs(ROOT, runs)
    assert len(after) == len(runs) and any(status == 2 for status, _ in after)  # the empty text is refused
    assert all(out for status, out in after if status == 0)
    json_runs = [argv for argv in runs if "json" in argv and argv[0] == "analyze"]
    assert all('"backend":' in new[1] for argv, new in zip(runs, after) if argv in json_runs and new[0] == 0)
    for argv, old, new in zip(runs, before, after):
        assert [new[0], ADDED_FIELD.sub("", new[1])] == old, argv


ADDED_FIELD = re.compile(r'"backend": ?"transformers", ?')
