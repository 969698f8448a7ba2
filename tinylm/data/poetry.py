"""Tang poems for a character-level language model: reading, cleaning, the five-character
form, a split by poem and the training corpus of five-character quatrains（五言绝句）
(chapter 02; sampling from the trained model: chapter 10, tinylm/train/quatrains.py).

    poems = read_poems()                     # every poem of POEM_FILES, as cleaned text
    quatrain_problem("白日依山盡，黃河入海流。欲窮千里目，更上一層樓。")   # None: right form
    quatrain_problem("白日依山盡，黃河入海流。")   # FormProblem("line count", "2 lines, ...")
    corpus = build_corpus(val_fraction=0.1)  # PoemCorpus: train / val quatrains and counts
    train_text, val_text = corpus.texts()    # one quatrain per line: what `tinylm train gpt
                                             # --preset tang-poems` reads ("tang-poems")

**The files.** The five files of 《全唐诗》 registered as ``poetry.tang.0`` ...
``poetry.tang.4000`` (1,000 to 1,002 poems each) and 《唐诗三百首》 (``tangshi300``, 366
poems), all in traditional characters, each a JSON list of ``{"author", "paragraphs",
"title", ...}``; they are found and checked by sha256 through tinylm/data/datasets.py, and
a file that is not such a list is an error naming the file, the poem and the fix.

**Cleaning.** A poem's text is its paragraphs, stripped and joined, in Unicode NFC (which
changes nothing in these files). Its characters must be Han ideographs (any CJK block; the
rare ones of the extensions are kept) or the four marks that end its lines, ，。？！.
106 of the 5,369 poems hold something else and are dropped whole, since the stray marks
are editorial, not poetry: ``[ ]`` around a supplied character (``[爽]節在重九``, 81
poems), ``□`` for a lost one (18), ``{𥫗/戢}`` or ``/`` spelling out a composed character
(3), ``：`` (4) and a title in ``《 》`` (1). Then exact repeats are dropped, keeping the
first: 152, poems filed twice in 全唐诗 (93) and 59 of 唐诗三百首 (already in the five
files, or twice in it).

**The form.** ``verse_lines`` cuts a text after each mark into its lines (句). A
five-character poem（五言诗） is whole couplets (联), each "XXXXX，XXXXX。": every line five
Han characters and a mark, the first line of a couplet ending in ，, the second in 。. As in
the files, ？ or ！ may stand for either mark (96 of the 3,283 five-character poems use one,
as in "夫子何爲者？栖栖一代中。"). A quatrain（绝句）is two couplets:
"XXXXX，XXXXX。XXXXX，XXXXX。". ``five_char_problem`` returns why a text is not one
(``FormProblem``: the kind, one of ``FORM_KINDS``, and a sentence), checking in this order:
empty, a character that is neither Han nor a mark, the number of lines, then line by line
a missing mark, the length, the mark.

**The corpus.** The five-character quatrains alone are 529 poems, 12,696 characters: too
little to train on. A regulated verse（律诗, 8 lines: 1,583 poems） or a longer
five-character poem has the same lines and couplets, so every five-character poem is cut
into consecutive quatrains of 4 lines (the old name 截句, "cut verse", says the same of the
绝句's shape), and a closing couplet left over (poems of 6, 10, 14, ... lines: 412) is
dropped; the 9 poems of a single couplet give no quatrain. Each quatrain is one line of the
corpus, so the newline ends a quatrain, and the quatrains of one poem follow each other: a
window of the training text sees a poem's earlier stanza as its context.

**The split** is by poem, so no poem has stanzas on both sides: a poem is validation when
sha256(f"{seed}\\n{first line}"), its first 8 bytes read as a fraction of 2^64, is below
``val_fraction``. It depends on the poem alone, not on the order of the files or on which
other poems are read; poems that share a first line (variant versions that survive the
exact de-duplication) fall on the same side. The realised fraction is close to, not
exactly, ``val_fraction``.

**Counts** (``build_corpus().counts``; val_fraction 0.1, seed 0): 5,369 poems read; 106
dropped for their characters; 152 repeats; 1,828 not five-character poems; 3,283
five-character poems, 9 too short. Train: 2,937 poems, 7,356 quatrains, 183,900 characters
(newlines included). Validation: 337 poems (10.3 %), 869 quatrains, 21,725 characters.
4,703 distinct characters in all, 101 of them (115 of the validation characters) never
seen in training.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from tinylm.data.cleaning import normalize_unicode
from tinylm.data.datasets import dataset_path

POEM_FILES = ("poetry.tang.0", "poetry.tang.1000", "poetry.tang.2000", "poetry.tang.3000",
              "poetry.tang.4000", "tangshi300")
MARKS = "，。？！"              # the marks that end a line
FIRST_ENDS = "，？！"           # may end the first line of a couplet
SECOND_ENDS = "。？！"          # may end the second line of a couplet
CHARS_PER_LINE = 5
QUATRAIN_LINES = 4
SPLIT_SEED = 0
FORM_KINDS = ("empty", "character", "line count", "line length", "punctuation")
_LINE = re.compile(f"[^{MARKS}]*[{MARKS}]|[^{MARKS}]+$")


class Poem(NamedTuple):
    text: str       # cleaned, e.g. "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"
    source: str     # the registry name of its file, e.g. "poetry.tang.0"
    index: int      # its position in that file


class FormProblem(NamedTuple):
    kind: str       # one of FORM_KINDS
    message: str    # e.g. "line 3 has 4 characters, not 5"


def is_han(char: str) -> bool:
    """A Han ideograph of any CJK block (unified, its extensions, compatibility)."""
    return unicodedata.name(char, "").startswith(("CJK UNIFIED IDEOGRAPH",
                                                  "CJK COMPATIBILITY IDEOGRAPH"))


def odd_character(text: str) -> int | None:
    """The position of the first character that is neither Han nor one of MARKS, or None."""
    return next((i for i, c in enumerate(text) if not (is_han(c) or c in MARKS)), None)


def clean_poem(paragraphs) -> str:
    """A poem's paragraphs, each stripped, joined in Unicode NFC."""
    return normalize_unicode("".join(p.strip() for p in paragraphs))


def verse_lines(text: str) -> list[str]:
    """``text`` cut after each of ，。？！ (the mark stays with its line); a tail without a
    mark is a line too. "白日依山盡，黃河入海流。" -> ["白日依山盡，", "黃河入海流。"]."""
    return _LINE.findall(text)


def five_char_problem(text: str, n_lines: int | None = None) -> FormProblem | None:
    """Why ``text`` is not a five-character poem of ``n_lines`` lines (None: of any number of
    whole couplets); None when it is one. The checks, in order, are in the module docstring."""
    if not text:
        return FormProblem("empty", "the text is empty")
    position = odd_character(text)
    if position is not None:
        char = text[position]
        return FormProblem("character", f"character {char!r} (U+{ord(char):04X}) at position "
                           f"{position} is neither a Han character nor one of {MARKS}")
    lines = verse_lines(text)
    counted = f"{len(lines)} line{'s' * (len(lines) != 1)}"
    if n_lines is not None and len(lines) != n_lines:
        return FormProblem("line count", f"{counted}, not {n_lines}")
    if n_lines is None and len(lines) % 2:
        return FormProblem("line count", f"{counted}: not whole couplets")
    for number, line in enumerate(lines, 1):
        mark, body = line[-1], line[:-1]
        if mark not in MARKS:
            return FormProblem("punctuation", f"line {number} ({line}) ends without a mark")
        if len(body) != CHARS_PER_LINE:
            return FormProblem("line length", f"line {number} ({line}) has {len(body)} "
                               f"character{'s' * (len(body) != 1)}, not {CHARS_PER_LINE}")
        allowed = FIRST_ENDS if number % 2 else SECOND_ENDS
        if mark not in allowed:
            return FormProblem("punctuation", f"line {number} ({line}) ends with {mark!r}; "
                               f"the {'first' if number % 2 else 'second'} line of a couplet "
                               f"ends with one of {allowed}")
    return None


def quatrain_problem(text: str) -> FormProblem | None:
    """Why ``text`` is not a five-character quatrain; None when it is."""
    return five_char_problem(text, QUATRAIN_LINES)


def is_five_char_quatrain(text: str) -> bool:
    """"XXXXX，XXXXX。XXXXX，XXXXX。" (？ or ！ for either mark), and nothing else."""
    return quatrain_problem(text) is None


def read_poem_file(name: str) -> list[Poem]:
    """The poems of the registered JSON file ``name`` (found and verified by sha256 through
    tinylm/data/datasets.py), cleaned; a file that is not a list of poems with a
    "paragraphs" list of strings is an error naming the poem."""
    path = dataset_path(name)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"dataset {name!r}: {path} is not UTF-8 JSON ({error}). Fix: restore "
                         f"the file (shared/data/README.md says where it comes from).") from None
    if not isinstance(items, list):
        raise ValueError(f"dataset {name!r}: {path} holds a JSON {type(items).__name__}, not "
                         "the list of poems of a chinese-poetry file.")
    poems = []
    for index, item in enumerate(items):
        paragraphs = item.get("paragraphs") if isinstance(item, dict) else None
        if not (isinstance(paragraphs, list) and all(isinstance(p, str) for p in paragraphs)):
            raise ValueError(f"dataset {name!r}: poem {index} of {path} has no \"paragraphs\" "
                             "list of strings; this is not a chinese-poetry poem file.")
        poems.append(Poem(clean_poem(paragraphs), name, index))
    return poems


def read_poems(names=POEM_FILES) -> list[Poem]:
    """Every poem of the files ``names``, in file order."""
    return [poem for name in names for poem in read_poem_file(name)]


def is_validation(text: str, val_fraction: float, seed: int = SPLIT_SEED) -> bool:
    """Whether the poem ``text`` belongs to the validation side (the rule: module docstring)."""
    key = f"{seed}\n{verse_lines(text)[0]}".encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") < val_fraction * 2 ** 64


def quatrains_of(text: str) -> list[str]:
    """A five-character poem cut into consecutive quatrains; a couplet left over is dropped."""
    lines = verse_lines(text)
    step = QUATRAIN_LINES
    return ["".join(lines[i:i + step]) for i in range(0, len(lines) - step + 1, step)]


@dataclass(frozen=True)
class PoemCorpus:
    """The quatrains of the training and validation poems, in file order, and the counts."""

    train: tuple
    val: tuple
    counts: dict

    def texts(self) -> tuple[str, str]:
        """(train text, validation text): one quatrain per line, each ending in a newline."""
        return "".join(q + "\n" for q in self.train), "".join(q + "\n" for q in self.val)


def build_corpus(val_fraction: float = 0.1, seed: int = SPLIT_SEED,
                 names=POEM_FILES) -> PoemCorpus:
    """Read, clean, de-duplicate, keep the five-character poems, split them by poem and cut
    them into quatrains (each step: the module docstring). A side left empty is an error."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} must lie strictly between 0 and 1.")
    poems = read_poems(names)
    counts = {"poems": len(poems), "odd_characters": 0, "repeats": 0, "not_five_character": 0,
              "too_short": 0, "couplet_left_over": 0}
    seen, sides = set(), {"train": [], "val": []}
    for poem in poems:
        if odd_character(poem.text) is not None:
            counts["odd_characters"] += 1
            continue
        if poem.text in seen:
            counts["repeats"] += 1
            continue
        seen.add(poem.text)
        if five_char_problem(poem.text) is not None:
            counts["not_five_character"] += 1
            continue
        stanzas = quatrains_of(poem.text)
        if not stanzas:
            counts["too_short"] += 1
            continue
        counts["couplet_left_over"] += len(verse_lines(poem.text)) % QUATRAIN_LINES != 0
        sides["val" if is_validation(poem.text, val_fraction, seed) else "train"].append(stanzas)
    for side, kept in sides.items():
        if not kept:
            raise ValueError(f"the split left no {side} poems ({counts}); the files hold too "
                             "few five-character poems for val_fraction="
                             f"{val_fraction}. Read more files or change val_fraction.")
        counts[f"{side}_poems"] = len(kept)
        counts[f"{side}_quatrains"] = sum(len(s) for s in kept)
        counts[f"{side}_characters"] = sum(len(q) + 1 for s in kept for q in s)
    return PoemCorpus(tuple(q for s in sides["train"] for q in s),
                      tuple(q for s in sides["val"] for q in s), counts)


def tang_poem_texts(val_fraction: float = 0.1) -> tuple[str, str]:
    """(train text, validation text) of the "tang-poems" dataset (tinylm/train/setup.py)."""
    return build_corpus(val_fraction).texts()
