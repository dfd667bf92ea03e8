"""README stays true: its API snippet runs against a live server, and it lists every setting."""

import re
from pathlib import Path

import pytest

from tests.served import serve
from visualizer.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_lists_every_setting():
    for name, _, _ in Settings.help_table():
        if name in ("model", "models"):
            continue
        assert f"VISUALIZER_{name.upper()}" in README


def test_readme_has_the_two_quick_start_commands():
    quick = README.split("## Quick start")[1].split("##")[0]
    assert "make run" in quick and "make test" in quick


@pytest.mark.slow
def test_readme_api_snippet_runs(bundled_lm, capsys):
    snippet = re.search(r"```python\n(from gradio_client.*?)```", README, re.S).group(1)
    with serve(Settings()) as url:
        exec(snippet.replace("http://127.0.0.1:7860/", url + "/"), {})  # noqa: S102 - our own README
    printed = capsys.readouterr().out
    assert "['␣dog', '␣likes', '␣food']" in printed


def test_readme_python_snippet_runs(bundled_lm, capsys, monkeypatch):
    import visualizer.model.loading

    snippet = re.search(r"```python\n(from visualizer\.analysis.*?)```", README, re.S).group(1)
    monkeypatch.setattr(visualizer.model.loading, "load_model", lambda *args: bundled_lm)  # already loaded once
    exec(snippet, {})  # noqa: S102 - our own README
    printed = capsys.readouterr().out
    assert " 2 ['␣dog', '␣likes', '␣food']" in printed  # mask_first=2: two of three positions count
    assert "(3,) (3, 5)" in printed and "the dog likes" in printed


@pytest.mark.parametrize("name", ["README.md", "BENCHMARKS.md"])
def test_every_table_row_belongs_to_a_table(name):
    """A blank line ends a Markdown table: rows after it would show as plain text with pipes."""
    text = (Path(__file__).resolve().parent.parent / name).read_text()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks may hold pipes
    for block in re.findall(r"(?:^\|.*\n)+", prose, flags=re.M):
        lines = block.splitlines()
        assert len(lines) >= 2 and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[1]), lines[0][:60]


def test_the_file_map_names_every_module_in_its_folder():
    """README's map of the files follows the tree: each folder's entry names each of its modules, and every
    path it names exists."""
    root = Path(__file__).resolve().parent.parent
    files = README.split("## Files")[1].split("\n## ")[0]
    entries = re.split(r"\n(?=- )", files)  # one top-level entry with its sub-list
    for folder in sorted(p for p in (root / "visualizer").iterdir() if (p / "__init__.py").is_file()):
        entry = next(e for e in entries if e.startswith(f"- `visualizer/{folder.name}/`"))
        for module in folder.glob("*.py"):
            if module.name not in ("__init__.py", "__main__.py"):
                assert f"`{module.name}`" in entry, f"README's Files map lacks visualizer/{folder.name}/{module.name}"
    for path in re.findall(r"`((?:visualizer|tests|scripts|assets)/[\w/.]*|[\w.]+\.(?:py|md|sh))`", files):
        if "/" in path:
            assert (root / path).exists(), path


def test_readme_says_how_to_serve_a_large_model_on_one_gpu_several_gpus_and_several_nodes():
    section = README.split("#### Serving a large model for it")[1].split("\n## ")[0]
    assert "vllm serve" in section and "--max-logprobs" in section
    assert "--tensor-parallel-size" in section and "--pipeline-parallel-size" in section and "ray start" in section
    assert 'VISUALIZER_MODELS="' in section and "vllm:http" in section
    assert "CPU Space in front of a GPU server" in section and "VISUALIZER_ENGINE_API_KEY" in section
    assert "| Layers, Train" in section  # what each view can and cannot show
