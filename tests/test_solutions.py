"""The chapters' apparatus, and the worked solutions in chapters/solutions/ that cannot rot.

Every chapter (chapters/NN-name.md) has objectives near its top, a summary, three or more
checkpoint questions, exercises tagged by difficulty (★, ★★, ★★★) and a link to its
solutions file, chapters/solutions/NN-name.md. That file answers every exercise under a
heading ``## Exercise N``, and every checkpoint question under ``### Question N`` in its
``## Checkpoint questions`` section. Each ```python block in it is executed here, in a fresh
namespace, with a temporary directory as the working directory, TINYLM_FAST=1 and one BLAS
thread, so a solution whose claimed number no longer comes out fails with its file and the
index of its block.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
SOLUTIONS = CHAPTERS / "solutions"
CHAPTER_FILES = sorted(CHAPTERS.glob("[0-9][0-9]-*.md"))

BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXERCISE = re.compile(r"^(\d+)\.\s", re.MULTILINE)
TAGGED = re.compile(r"^\d+\.\s+\(★{1,3}\)")
ANSWER = re.compile(r"^## Exercise (\d+)\b", re.MULTILINE)
QUESTION_ANSWER = re.compile(r"^### Question (\d+)\s*$", re.MULTILINE)


def _section(text: str, title: str) -> str:
    """The text of the ``## title`` section, up to the next ``## `` heading ('' if absent)."""
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text,
                      re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def _blocks():
    for path in sorted(SOLUTIONS.glob("*.md")):
        for index, code in enumerate(BLOCK.findall(path.read_text(encoding="utf-8"))):
            yield pytest.param(path, index, code, id=f"{path.stem}-{index}")


def test_there_is_a_chapter_and_a_solutions_file_for_each_other():
    chapters = {path.name for path in CHAPTER_FILES}
    solutions = {path.name for path in SOLUTIONS.glob("*.md")}
    assert chapters, "no chapters found"
    assert chapters == solutions, (f"chapters without solutions: {sorted(chapters - solutions)}; "
                                   f"solutions without a chapter: {sorted(solutions - chapters)}")


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda p: p.stem)
def test_chapter_has_objectives_summary_questions_and_tagged_exercises(chapter):
    text = chapter.read_text(encoding="utf-8")
    top = "\n".join(text.splitlines()[:60])
    assert "Objectives" in top, f"{chapter.name}: no objectives in its first 60 lines"
    assert _section(text, "Summary").strip(), f"{chapter.name}: no '## Summary' section"
    questions = EXERCISE.findall(_section(text, "Checkpoint questions"))
    assert len(questions) >= 3, f"{chapter.name}: {len(questions)} checkpoint questions, want >= 3"
    exercises = _section(text, "Exercises")
    items = [line for line in exercises.splitlines() if EXERCISE.match(line)]
    assert items, f"{chapter.name}: no numbered exercises under '## Exercises'"
    untagged = [line[:60] for line in items if not TAGGED.match(line)]
    assert not untagged, f"{chapter.name}: exercises without a difficulty tag: {untagged}"
    assert "## Solutions" not in text, (f"{chapter.name}: solutions belong in "
                                        f"solutions/{chapter.name}, not in the chapter")


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda p: p.stem)
def test_chapter_links_its_solutions_and_every_exercise_is_answered(chapter):
    text = chapter.read_text(encoding="utf-8")
    link = f"(solutions/{chapter.name})"
    assert link in text, f"{chapter.name}: no link {link}"
    exercises = {int(n) for n in EXERCISE.findall(_section(text, "Exercises"))}
    solutions = SOLUTIONS / chapter.name
    answered = {int(n) for n in ANSWER.findall(solutions.read_text(encoding="utf-8"))}
    assert exercises == answered, (f"solutions/{chapter.name}: exercises {sorted(exercises)}, "
                                   f"'## Exercise N' answers {sorted(answered)}")


@pytest.mark.parametrize("chapter", CHAPTER_FILES, ids=lambda p: p.stem)
def test_every_checkpoint_question_has_a_written_answer(chapter):
    questions = [int(n) for n in EXERCISE.findall(_section(chapter.read_text(encoding="utf-8"),
                                                           "Checkpoint questions"))]
    section = _section((SOLUTIONS / chapter.name).read_text(encoding="utf-8"),
                       "Checkpoint questions")
    answered = [int(n) for n in QUESTION_ANSWER.findall(section)]
    assert answered == questions, (f"solutions/{chapter.name}: checkpoint questions {questions}, "
                                   f"'### Question N' answers {answered}")
    bodies = QUESTION_ANSWER.split(section)[2::2]
    empty = [n for n, body in zip(answered, bodies) if len(body.split()) < 15]
    assert not empty, f"solutions/{chapter.name}: answers to questions {empty} are (nearly) empty"


@pytest.mark.parametrize("path, index, code", list(_blocks()))
def test_solution_code_runs_and_its_claims_hold(path, index, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYLM_FAST", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    namespace = {"__name__": f"solution_{path.stem.replace('-', '_')}_{index}"}
    try:
        exec(compile(code, f"{path.relative_to(ROOT)} (python block {index})", "exec"), namespace)
    except Exception as error:  # the file and block index lead the report
        raise AssertionError(f"{path.relative_to(ROOT)}, python block {index} failed: "
                             f"{type(error).__name__}: {error}") from error
