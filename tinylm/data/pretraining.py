"""The unlabelled English that BERT and GPT are pre-trained on, its word vocabulary with
BERT's special tokens, and the token stream the batches are cut from (chapter 09).

    lines = corpus_lines("ptb")                            # normalised lines
    tokenizer = build_tokenizer(train_lines, vocab_size=16384, kind="wordpiece")
    stream = token_stream(tokenizer, lines)                # ids, each line ended by [SEP]

Corpora (each a registered dataset, tinylm/data/datasets.py), one line a unit:

    ptb              Penn Treebank's training split, one sentence a line (its "<unk>"
                     becomes the token [UNK]; it is already lower-case, numbers are "N")
    fra-eng          the English side of the Tatoeba pairs, each distinct sentence once
                     (the file repeats an English sentence for each of its translations)
    timemachine      H. G. Wells' novel, one printed line a line
    tinyshakespeare  the plays' lines
    sms-spam         the SMS messages outside the validation and test parts of the
                     fine-tuning's balanced split (seed 123, tinylm/data/classification.py),
                     their labels dropped, and no message equal to a held-out one: the
                     unlabelled text of the task itself, for domain-adaptive pre-training
                     (``--setting init=RUN``, tinylm/train/pretrain_run.py). Not in the
                     default selection; a model pre-trained on it must be tested on that
                     split only (the other splits' test messages are among its lines)

Text is normalised by ``normalise``: lower case (the corpora mix cased and uncased text;
the tasks' words should meet the same vocabulary either way). Two tokenizers
(``build_tokenizer(kind=...)``):

* "wordpiece": BERT's subword vocabulary (tinylm/data/wordpiece.py), pieces trained on the
  training lines; a word it has never seen is spelled in pieces, so almost nothing is
  [UNK] (0.5 % of the SMS words, 0.01 % of the polarity words at 16,384 pieces).
* "word": runs of word characters and single other characters (``TOKEN_PATTERN``):
  "don't" -> "don", "'", "t"; a word outside the vocabulary is [UNK] (13 % of the SMS
  words, 10 % of the polarity words at 16,384 words).

Both vocabularies start with the five specials,

    [PAD] 0   padding        [UNK] 1   a word outside the vocabulary
    [CLS] 2   BERT's first   [SEP] 3   the end of a line (and of a text)   [MASK] 4

then the pieces, or the ``vocab_size - 5`` most frequent words of the *training* lines
(ties alphabetical). Every line of the stream ends with [SEP]: BERT's windows contain several
lines, as its pre-training documents do, and a GPT learns that [SEP] ends a text, so the
state at a text's final [SEP] is the one to classify from.

"""

from __future__ import annotations

from collections import Counter

import numpy

from tinylm.data.classification import balanced_split, load_task
from tinylm.data.datasets import load_text
from tinylm.data.tokenizers import WordTokenizer
from tinylm.data.wordpiece import WordPieceTokenizer

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
FIRST_WORD_ID = len(SPECIALS)
TOKEN_PATTERN = r"\[UNK\]|\w+|[^\w\s]"
TOKENIZER_KINDS = ("wordpiece", "word")
CORPORA = ("ptb", "fra-eng", "timemachine", "tinyshakespeare")     # the default selection
TASK_CORPORA = ("sms-spam",)                                        # a task's own text


def normalise(text: str) -> str:
    """Lower case: what every text, pre-training or task, becomes before tokenising."""
    return text.lower()


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _english_of_pairs(text: str) -> list[str]:
    english = (line.split("\t", 1)[0] for line in text.splitlines() if "\t" in line)
    return list(dict.fromkeys(e.strip() for e in english if e.strip()))


def corpus_lines(name: str) -> list[str]:
    """The normalised lines of corpus ``name`` (module docstring), in file order."""
    if name == "ptb":
        return [normalise(line).replace("<unk>", "[UNK]")
                for line in _lines(load_text("ptb.train"))]
    if name == "fra-eng":
        return [normalise(line) for line in _english_of_pairs(load_text("fra-eng"))]
    if name in ("timemachine", "tinyshakespeare"):
        return [normalise(line) for line in _lines(load_text(name))]
    if name == "sms-spam":
        return unlabelled_task_lines(name)
    raise ValueError(f"unknown pre-training corpus {name!r}; choose from "
                     f"{list(CORPORA + TASK_CORPORA)}.")


def unlabelled_task_lines(task_name: str, split_seed: int = 123) -> list[str]:
    """The normalised texts of a task outside its balanced split's validation and test
    parts, without any text equal to a held-out one, in file order (labels dropped)."""
    task = load_task(task_name)
    split = balanced_split(task, seed=split_seed)
    held_out = numpy.concatenate([split.val, split.test])
    held_texts = {normalise(task.texts[i]) for i in held_out}
    kept = numpy.ones(len(task), dtype=bool)
    kept[held_out] = False
    lines = (normalise(task.texts[i]).strip() for i in numpy.flatnonzero(kept))
    return [line for line in lines if line and line not in held_texts]


def split_lines(lines: list, val_fraction: float) -> tuple[list, list]:
    """The last ``val_fraction`` of a corpus's lines (at least one) are its validation part:
    a contiguous tail, so no validation line sits between training lines of its text."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction} must lie in (0, 1).")
    if len(lines) < 2:
        raise ValueError(f"a corpus of {len(lines)} line(s) cannot be split into training and "
                         "validation lines.")
    n_val = max(1, int(round(len(lines) * val_fraction)))
    return lines[:-n_val], lines[-n_val:]


def make_tokenizer(tokens) -> WordTokenizer:
    """The word tokenizer over ``tokens`` (the specials first); no end-of-line token (the
    stream adds [SEP] itself), unknown words -> [UNK]."""
    return WordTokenizer(list(tokens), unk="[UNK]", eos=None, lower=False,
                         pattern=TOKEN_PATTERN)


def build_tokenizer(lines, vocab_size: int, min_count: int = 1, kind: str = "word"):
    """The specials, then WordPiece's pieces (pairs merged only when seen >= min_count
    times) or the ``vocab_size - 5`` most frequent words (seen >= min_count times) of
    ``lines``."""
    if vocab_size <= FIRST_WORD_ID:
        raise ValueError(f"vocab_size={vocab_size} must exceed the {FIRST_WORD_ID} special "
                         "tokens.")
    if kind == "wordpiece":
        return WordPieceTokenizer.train(lines, vocab_size, min_frequency=min_count)
    if kind != "word":
        raise ValueError(f"tokenizer kind {kind!r} is not one of {list(TOKENIZER_KINDS)}.")
    splitter = make_tokenizer(SPECIALS)
    counts = Counter(token for line in lines for token in splitter.split(line))
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                   key=lambda w: (-counts[w], w))[:vocab_size - FIRST_WORD_ID]
    return make_tokenizer([*SPECIALS, *words])


def token_stream(tokenizer: WordTokenizer, lines) -> numpy.ndarray:
    """Every line's ids followed by [SEP], concatenated: [N] int64."""
    pieces = []
    for line in lines:
        pieces += [tokenizer.encode(line), numpy.array([SEP_ID])]
    if not pieces:
        raise ValueError("token_stream: no lines to encode.")
    return numpy.concatenate(pieces).astype(numpy.int64)


def unknown_rate(tokenizer: WordTokenizer, lines) -> float:
    """The fraction of the tokens (words or pieces) of ``lines`` that are [UNK]."""
    ids = numpy.concatenate([tokenizer.encode(line) for line in lines])
    return float((ids == UNK_ID).mean()) if ids.size else 0.0
