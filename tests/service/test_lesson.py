"""The lesson's requests: step numbers, k, Markdown that shows typed text literally, and the slow steps
computed once per text."""

import re

import pytest
from markdown_it import MarkdownIt

from visualizer.analysis.one_pass import analyze
from visualizer.errors import InputError
from visualizer.service import lesson
from visualizer.settings import Settings

MARKUP = "<b>hi</b> <img src=x onerror=alert(1)> **bold** _it_ `code` [link](http://x) # h | a | %{x} &amp; \\ $$x$$"


@pytest.fixture
def settings(tiny_gpt2_dir):
    return Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))


def _counting(lm):
    """A model getter that counts its calls."""
    calls = []

    def get():
        calls.append(1)
        return lm

    return get, calls


def test_markdown_shows_typed_text_literally():
    rendered = MarkdownIt("commonmark").render(lesson.markdown_literal(MARKUP))
    assert rendered == f"<p>{MARKUP.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</p>\n"
    assert not re.search(r"<(?!/?p>)", rendered)  # no tag but the paragraph


@pytest.mark.parametrize("bad", [0, 9, -1, 2.5, "3", None, True])
def test_a_step_outside_1_to_8_is_refused_in_one_sentence(bad):
    with pytest.raises(InputError, match="steps 1 to 8"):
        lesson.check_step(bad)


def test_moving_stays_within_the_steps():
    assert [lesson.moved(s, 1) for s in (1, 7, 8)] == [2, 8, 8]
    assert [lesson.moved(s, -1) for s in (1, 2, 8.0)] == [1, 1, 7]


def test_every_step_draws_with_its_own_heading_and_k_only_where_it_is_shown(tiny_lm, settings):
    analysis = analyze("the cat likes fish and the dog", tiny_lm)
    get, _ = _counting(tiny_lm)
    last = len(analysis.positions)
    for step in range(1, lesson.STEPS + 1):
        view = lesson.lesson_view(analysis, step, 2, classroom=step % 2 == 0, settings=settings, model=get)
        assert view.heading.startswith(f"### {step} / 8 · ")
        assert view.k == (2 if step in lesson.K_STEPS else None)
        assert 1 <= view.body.count("\n\n") + 1 <= 3 and view.alt
    assert lesson.lesson_view(analysis, 4, 99, False, settings, get).k == last


def test_the_slow_steps_run_once_per_text(tiny_lm, settings, monkeypatch):
    runs = []
    for name in ("after_training", "open_questions"):
        real = getattr(lesson.computations, name)
        monkeypatch.setattr(
            lesson.computations, name, lambda *a, real=real, name=name, **kw: runs.append(name) or real(*a, **kw)
        )
    analysis = analyze("a quick brown fox jumps", tiny_lm)
    get, _ = _counting(tiny_lm)
    first = lesson.lesson_view(analysis, 7, 1, False, settings, get)
    again = lesson.lesson_view(analysis, 7, 2, True, settings, get)  # moving k or the style reuses the run
    assert first.alt.split(";")[0] == again.alt.split(";")[0] and first.alt != again.alt
    eight = [lesson.lesson_view(analysis, 8, None, False, settings, get) for _ in range(2)]
    other = analyze("a quick brown fox jumps over", tiny_lm)
    assert lesson.lesson_view(other, 8, None, False, settings, get).alt != eight[0].alt
    assert runs == ["after_training", "open_questions", "open_questions"]


def test_remembered_keeps_the_last_few_and_computes_each_once():
    computed = []
    memo = lesson.Remembered(size=2)
    for key in ["a", "b", "a", "c", "a", "b"]:
        memo.get(key, lambda key=key: computed.append(key) or key.upper())
    assert computed == ["a", "b", "c", "b"]  # 'b' was the oldest when 'c' came, so it was dropped
