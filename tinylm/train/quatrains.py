"""Sample five-character quatrains（五言绝句）from a character-level GPT and measure their form
(chapter 10; the form and the corpus: tinylm/data/poetry.py).

    model, tokenizer, _ = load_trained("runs/tang-poems")
    check_first_characters(tokenizer, "春月")
    results = measure_quatrains(model, tokenizer, "春月", [0.6, 1.0], samples=20, seed=0)
    results[0]["form"]            # the fraction of the samples at 0.6 with the exact form

**A sample.** The prompt is a newline and the first character: in the corpus every
quatrain starts after a newline, so this asks for the opening of a quatrain, not for a
character in the middle of a line. The continuation is drawn with temperature sampling
(``tinylm.generate.generate``, with the KV cache) and stops at the first newline, which is
not part of the sample; one that has not produced a newline after ``MAX_NEW_CHARACTERS``
(twice a quatrain's 24) is "unterminated" and counts as a failure of every measure.

**The measures**, per temperature, over ``samples`` poems for each first character:

* ``form``: the fraction with the exact quatrain form (``tinylm.data.poetry.quatrain_problem``);
* ``line_count``: the fraction with 4 lines (句), whatever their length or marks (an
  unterminated sample does not count);
* ``copies``: the fraction that are, character for character, a quatrain of the training
  text (``known``), i.e. memorised rather than composed (None when ``known`` is None);
* ``failures``: how many samples fail for each kind of ``FormProblem`` (the first problem
  found), plus "unterminated";
* ``examples``: the first ``examples`` samples of each first character, with their problem.

**Seeds.** Each (temperature, first character) pair draws from its own generator,
``default_rng([seed, round(1000 * temperature), ord(first)])`` (NumPy's, seeded by the
three numbers), so adding a temperature or a first character does not change the other
samples.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import default_rng
from tinylm.data.poetry import QUATRAIN_LINES, FormProblem, quatrain_problem, verse_lines
from tinylm.generate import generate

NEWLINE = "\n"
MAX_NEW_CHARACTERS = 48
UNTERMINATED = "unterminated"


def check_first_characters(tokenizer, firsts) -> None:
    """Each of ``firsts`` must be one character of the run's vocabulary, and the vocabulary
    must hold the newline that separates quatrains; else ValueError naming the fix."""
    if not firsts:
        raise ValueError("no first character given; give at least one, e.g. 春.")
    chars = set(getattr(tokenizer, "chars", ()))
    if NEWLINE not in chars:
        raise ValueError("the run's vocabulary has no newline, so a sample cannot end; sample "
                         "from a character-level run trained on --dataset tang-poems.")
    for first in firsts:
        if len(first) != 1:
            raise ValueError(f"the first character {first!r} is {len(first)} characters; give "
                             "one character per item.")
        if first not in chars:
            raise ValueError(f"the first character {first!r} is not among the run's "
                             f"{len(chars)} characters. The Tang poems are in traditional "
                             "characters (風, not 风); choose a character the poems use.")


def sample_poems(model, tokenizer, first: str, temperature: float, samples: int, rng,
                 xp=numpy) -> list[tuple[str, bool]]:
    """``samples`` continuations of a newline and ``first``, each cut at its first newline
    -> [(text starting with ``first``, whether a newline ended it)]."""
    prompt = tokenizer.encode(NEWLINE + first)                                 # [2]
    batch = xp.asarray(numpy.tile(prompt, (samples, 1)))                       # [N, 2]
    stop = int(tokenizer.encode(NEWLINE)[0])
    new_ids = generate(model, batch, MAX_NEW_CHARACTERS, rng, temperature=temperature,
                       stop_ids=(stop,))                                       # [N, n]
    poems = []
    for row in new_ids:
        text = tokenizer.decode([int(i) for i in row])
        ended = NEWLINE in text
        poems.append((first + text.split(NEWLINE, 1)[0], ended))
    return poems


def problem_of(text: str, ended: bool) -> FormProblem | None:
    """The sample's first problem; an unterminated one is that, whatever its text."""
    if not ended:
        return FormProblem(UNTERMINATED, f"no newline within {MAX_NEW_CHARACTERS} characters")
    return quatrain_problem(text)


def measure_quatrains(model, tokenizer, firsts, temperatures, samples: int, seed: int = 0,
                      known=None, examples: int = 1, xp=numpy) -> list[dict]:
    """One dict per temperature: the measures of the module docstring."""
    check_first_characters(tokenizer, firsts)
    bad = [t for t in temperatures if not (math.isfinite(t) and t > 0)]
    if bad or not temperatures:
        raise ValueError(f"temperatures {list(temperatures)} must be one or more finite numbers "
                         "> 0 (0 would be greedy: the same poem every time).")
    if samples < 1:
        raise ValueError(f"samples={samples} must be an integer >= 1.")
    results = []
    for temperature in temperatures:
        form = lines = copies = 0
        failures, shown = {}, []
        for first in firsts:
            rng = default_rng([seed, round(1000 * temperature), ord(first)])
            for k, (text, ended) in enumerate(sample_poems(model, tokenizer, first,
                                                           temperature, samples, rng, xp)):
                problem = problem_of(text, ended)
                form += problem is None
                lines += ended and len(verse_lines(text)) == QUATRAIN_LINES
                copies += known is not None and ended and text in known
                if problem is not None:
                    failures[problem.kind] = failures.get(problem.kind, 0) + 1
                if k < examples:
                    shown.append({"text": text, "problem": None if problem is None
                                  else problem.message})
        total = samples * len(firsts)
        results.append({"temperature": temperature, "samples": total, "form": form / total,
                        "line_count": lines / total,
                        "copies": None if known is None else copies / total,
                        "failures": failures, "examples": shown})
    return results
