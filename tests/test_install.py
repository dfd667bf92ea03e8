"""The one install path, as the image runs it: the Dockerfile's RUN line that calls scripts/setup.sh.

No image can be built here (no Docker engine, no base image), so the test does what the build
would: copies the build context (the checkout's files that git does not ignore, less
.dockerignore) into a temporary folder, applies the Dockerfile's ENV (its /home/user paths moved
into that folder) and runs the RUN line with /bin/sh -c, as Docker does. On top of that ENV, pip
reads only .venv/wheelhouse (PIP_NO_INDEX), which `scripts/setup.sh --dev` fills, so nothing here
needs the network, and writes no .pyc files while installing (PIP_NO_COMPILE: two thirds of the
install time here); instead Python writes those of the modules it imports (PYTHONDONTWRITEBYTECODE
unset), so later commands start about as fast as in the image, where pip compiled everything.
Neither changes what is installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
IMAGE_HOME = "/home/user"
IMAGE_APP = "/home/user/app"
INSTALL_TIMEOUT_S = 900


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: comments dropped, backslash continuations joined."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        word, _, rest = current.strip().partition(" ")
        logical.append((word.upper(), " ".join(rest.split())))
        current = ""
    return logical


def _moved(value: str, app: Path, home: Path) -> str:
    """`value` with the image's /home/user/app and /home/user paths moved to `app` and `home`."""
    return value.replace(IMAGE_APP, str(app)).replace(IMAGE_HOME, str(home))


def image_env(instructions, app: Path, home: Path, base: dict[str, str]) -> dict[str, str]:
    """`base` plus every ENV of the Dockerfile, paths moved, $VAR / ${VAR} read from the env before it."""
    env = dict(base)
    for word, args in instructions:
        if word != "ENV":
            continue
        before = dict(env)
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m, before=before: before.get(m[1], ""), _moved(value, app, home))
    return env


def setup_runs(instructions) -> list[str]:
    """The shell-form RUN commands that call scripts/setup.sh (the image's install)."""
    return [args for word, args in instructions if word == "RUN" and "scripts/setup.sh" in args]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's `patterns` leave `path` out of the build context (the forms used there)."""
    parts = path.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern.strip("/")) for i in range(len(parts))):
            return True
    return False


def copy_build_context(destination: Path) -> None:
    """Copy what `docker build .` would send: files git does not ignore, less .dockerignore's."""
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if not _ignored(name, patterns) and (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)


def _offline_pip() -> dict[str, str]:
    """pip settings for the test: only the local wheelhouse, no config file of this machine, no .pyc."""
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_COMPILE": "1",
    }


def _host_path() -> str:
    """This machine's PATH without the checkout's own virtual environment."""
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))


def _run(args, image, **kwargs) -> subprocess.CompletedProcess:
    """Run `args` in the image's folder with its environment; the output is kept for the message."""
    return subprocess.run(
        args,
        cwd=kwargs.pop("cwd", image.app),
        env=image.env,
        capture_output=True,
        text=True,
        timeout=kwargs.pop("timeout", 300),
        **kwargs,
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A fresh folder where the Dockerfile's install RUN line has run (app/, the context, and home/); removed after."""
    if not any(WHEELHOUSE.glob("torch-*.whl")):
        pytest.fail(f"{WHEELHOUSE} is missing: `scripts/setup.sh --dev` (run by `make test`) downloads it")
    instructions = dockerfile_instructions((ROOT / "Dockerfile").read_text())
    assert ("WORKDIR", IMAGE_APP) in instructions, "the test maps the image's WORKDIR to its copy"
    runs = setup_runs(instructions)
    assert runs, "the Dockerfile must install through scripts/setup.sh"
    base = tmp_path_factory.mktemp("image")
    app, home = base / "app", base / "home"
    home.mkdir()
    copy_build_context(app)
    env = image_env(instructions, app, home, {"PATH": _host_path(), "LANG": "C.UTF-8"}) | _offline_pip()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    image = SimpleNamespace(app=app, home=home, env=env)
    for command in runs:
        proc = _run(["/bin/sh", "-c", command], image, timeout=INSTALL_TIMEOUT_S)
        assert proc.returncode == 0, f"RUN {command}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    yield image
    shutil.rmtree(base, ignore_errors=True)  # ~1.5 GB; pytest would keep the last three runs' folders


def test_the_install_made_a_fresh_venv_in_the_copy_with_the_pinned_torch(image):
    code = "import sys, torch; print(sys.prefix); print(torch.__version__)"
    proc = _run([str(image.app / ".venv" / "bin" / "python"), "-c", code], image)
    prefix, torch_version = proc.stdout.split()
    assert Path(prefix) == image.app / ".venv"
    pin = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert torch_version.split("+")[0] == pin


def test_the_build_step_filled_the_weight_cache_named_by_the_dockerfile(image):
    cache = Path(image.env["VISUALIZER_CACHE"])
    assert cache.is_relative_to(image.home)
    assert list(cache.rglob("*.safetensors")), f"nothing converted into {cache}"


def test_the_venv_imports_the_app_from_the_copy(image):
    code = "import app, visualizer; print(app.__file__); print(visualizer.__file__)"
    proc = _run([str(image.app / ".venv" / "bin" / "python"), "-c", code], image)
    assert proc.returncode == 0, proc.stderr
    app_file, package_file = map(Path, proc.stdout.split())
    assert app_file == image.app / "app.py" and package_file.is_relative_to(image.app / "visualizer")


def test_the_visualizer_command_answers_help(image):
    proc = _run([str(image.app / ".venv" / "bin" / "visualizer"), "--help"], image)
    assert proc.returncode == 0, proc.stderr
    assert "analyze" in proc.stdout and "usage: visualizer" in proc.stdout


def test_the_visualizer_command_on_path_analyses_with_the_bundled_model(image):
    """`visualizer` as the Dockerfile's PATH finds it; the walkthrough's known answer (README)."""
    proc = _run(["visualizer", "analyze", "the dog likes food", "--format", "json"], image)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [t["display"] for t in result["tokens"]] == ["the", "␣dog", "␣likes", "␣food"]
    assert result["counted"] == 3 and result["loss"] == pytest.approx(10.3870, abs=5e-4)


def test_pip_install_dot_installs_the_visualizer_command(image):
    """A plain (not editable) `pip install .` also gives the command; it runs outside the checkout.
    Last in this file: it replaces the editable install the other tests read."""
    venv = image.app / ".venv"
    proc = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "."], image)
    assert proc.returncode == 0, proc.stderr
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import visualizer; print(visualizer.__file__)"], image, cwd=image.home
    )
    assert "site-packages" in Path(where.stdout.strip()).parts, where.stdout + where.stderr
    proc = _run([str(venv / "bin" / "visualizer"), "--help"], image, cwd=image.home)
    assert proc.returncode == 0 and "usage: visualizer" in proc.stdout, proc.stderr
