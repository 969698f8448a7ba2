"""Corpus BLEU (Papineni et al., 2002), written to give sacreBLEU's numbers exactly.

BLEU compares a system's hypotheses with one or more human references by counting the word
n-grams (n = 1..4) they share. For each order n the *modified precision* is

    p_n = sum over segments of clipped matches_n / sum over segments of hypothesis n-grams_n

where a hypothesis n-gram seen k times is credited at most m times, m being the most times it
occurs in any *single* reference of that segment (clipping: "the the the" earns no extra
credit against "the cat"). Short output would have high precision, so a *brevity penalty*

    BP = 1                 if c >= r
    BP = exp(1 - r / c)    if 0 < c < r        (0 when c = 0)

multiplies the geometric mean of the precisions, c being the total hypothesis length and r
the total of each segment's *closest* reference length (ties go to the shorter reference):

    BLEU = BP * exp(sum_n w_n log p_n),    w_n = 1/4,

reported in 0..100 because the p_n are in percent.

Smoothing of a zero precision (Chen & Cherry, 2014):

* ``"exp"`` (the default, NIST's mteval-v13a): the k-th order with no match gets
  p_n = 1 / (2^k * total_n) instead of 0;
* ``"floor"``: p_n = smooth_value / total_n (smooth_value 0.1 by default);
* ``"add-k"``: adds smooth_value (1 by default) to matches and totals of orders n >= 2;
* ``"none"``: a zero precision makes the score 0.

Whatever the smoothing, a corpus without one matching unigram scores 0, and an order with
no hypothesis n-gram at all (every segment shorter than n words) ends the product there:
its precision stays 0 and so does BLEU, unless ``effective_order`` averages only the orders
before it (what sentence BLEU does).

Pitfalls:

* Tokenisation changes the score: "cat." is one word to a white-space split and two ("cat",
  ".") to the 13a tokeniser, so BLEU figures are only comparable under the same tokeniser.
  13a (mteval-v13a, the WMT standard) is the default here, as in sacreBLEU; feed it
  detokenised text.
* Corpus BLEU is not the mean of sentence BLEUs: the counts are pooled over the corpus
  before dividing, so long segments weigh more, and one segment's missing 4-gram does not
  zero anything. Average sentence BLEU is a different (and smoothing-dependent) number.

References follow sacreBLEU's layout: a list of reference *streams*, each holding one
string per hypothesis (``[["ref for hyp 1", "ref for hyp 2"], [second refs...]]``); a flat
list of strings is a single stream.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

MAX_ORDER = 4
SMOOTH_DEFAULTS = {"exp": None, "floor": 0.1, "add-k": 1, "none": None}
TOKENIZERS = ("13a", "none")
_LOG_OF_ZERO = -9999999999.0     # what a zero precision contributes to the log-sum

# 13a: ASCII punctuation that always stands alone -- all of it but the apostrophe, the
# hyphen, the period and the comma (the last three are handled by the rules after it).
_ALWAYS_SPLIT = re.compile("([" + re.escape("!\"#$%&()*+/:;<=>?@[\\]^_`{|}~") + "])")
_PERIOD_COMMA_AFTER_NON_DIGIT = re.compile(r"([^0-9])([.,])")
_PERIOD_COMMA_BEFORE_NON_DIGIT = re.compile(r"([.,])([^0-9])")
_HYPHEN_AFTER_DIGIT = re.compile(r"([0-9])(-)")
_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


@dataclass
class BLEUScore:
    """A BLEU result: ``score`` in 0..100, ``precisions`` p_1..p_4 in percent, the brevity
    penalty ``bp``, ``ratio`` = sys_len / ref_len, and the sufficient statistics: clipped
    matches ``counts`` and hypothesis n-gram ``totals`` per order, and the lengths."""

    score: float
    precisions: list
    bp: float
    ratio: float
    sys_len: int
    ref_len: int
    counts: list
    totals: list

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.bp:.3f} "
                f"ratio = {self.ratio:.3f} hyp_len = {self.sys_len:d} "
                f"ref_len = {self.ref_len:d})")


# ---------------------------------------------------------------- tokenisation

def tokenize_13a(line: str) -> list:
    """mteval-v13a's tokenisation, as sacreBLEU applies it, as a list of tokens.

    Drops ``<skipped>`` and hyphenated line breaks (``-`` + newline), turns other newlines
    into spaces, decodes ``&quot; &amp; &lt; &gt;`` one after the other (so "&amp;lt;" ends up
    as "<", as in mteval), then puts
    spaces around punctuation: always for most of it, for ``.`` and ``,`` unless both
    neighbours are digits ("3.14" and "1,000" stay whole; "end." splits), and for ``-``
    only after a digit ("1990-2000" -> "1990 - 2000", but "well-known" stays one word).
    """
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, character in _ENTITIES:
            line = line.replace(entity, character)
    line = f" {line} "
    line = _ALWAYS_SPLIT.sub(r" \1 ", line)
    line = _PERIOD_COMMA_AFTER_NON_DIGIT.sub(r"\1 \2 ", line)
    line = _PERIOD_COMMA_BEFORE_NON_DIGIT.sub(r" \1 \2", line)
    line = _HYPHEN_AFTER_DIGIT.sub(r"\1 \2 ", line)
    return line.split()


def _tokens(line: str, tokenize: str, lowercase: bool) -> list:
    """Lowercase (optionally), strip trailing white space, tokenise."""
    if lowercase:
        line = line.lower()
    line = line.rstrip()
    return tokenize_13a(line) if tokenize == "13a" else line.split()


# ---------------------------------------------------------------- counting

def _ngram_counts(tokens: list) -> Counter:
    """Counts of every n-gram of order 1..MAX_ORDER, each a tuple of tokens."""
    return Counter(tuple(tokens[i:i + n])
                   for n in range(1, MAX_ORDER + 1) for i in range(len(tokens) - n + 1))


def _max_reference_counts(references: list) -> Counter:
    """For each n-gram, the most times it occurs in any one reference: its clipping limit."""
    limits = Counter()
    for tokens in references:
        for ngram, count in _ngram_counts(tokens).items():
            limits[ngram] = max(limits[ngram], count)
    return limits


def _closest_length(hyp_len: int, ref_lens: list) -> int:
    """The reference length nearest to ``hyp_len``; of two equally near, the shorter."""
    return min(ref_lens, key=lambda ref_len: (abs(ref_len - hyp_len), ref_len))


def _segment_statistics(hyp: list, refs: list) -> tuple:
    """(hyp_len, closest ref_len, clipped matches per order, hyp n-grams per order)."""
    limits = _max_reference_counts(refs)
    matches, totals = [0] * MAX_ORDER, [0] * MAX_ORDER
    for ngram, count in _ngram_counts(hyp).items():
        totals[len(ngram) - 1] += count
        matches[len(ngram) - 1] += min(count, limits[ngram])
    return len(hyp), _closest_length(len(hyp), [len(r) for r in refs]), matches, totals


# ---------------------------------------------------------------- the score

def brevity_penalty(sys_len: int, ref_len: int) -> float:
    """exp(1 - r/c) for a hypothesis shorter than the reference (0 for an empty one), else 1."""
    if sys_len >= ref_len:
        return 1.0
    return math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0


def _precisions(matches: list, totals: list, smooth_method: str, smooth_value) -> tuple:
    """(precisions in percent, number of orders until the first without any n-gram)."""
    precisions, halvings = [0.0] * MAX_ORDER, 1.0
    for n in range(MAX_ORDER):
        match, total = matches[n], totals[n]
        if smooth_method == "add-k" and n > 0:
            match, total = match + smooth_value, total + smooth_value
        if total == 0:
            return precisions, n
        if match:
            precisions[n] = 100.0 * match / total
        elif smooth_method == "exp":
            halvings *= 2
            precisions[n] = 100.0 / (halvings * total)
        elif smooth_method == "floor":
            precisions[n] = 100.0 * smooth_value / total
    return precisions, MAX_ORDER


def bleu_from_statistics(sys_len: int, ref_len: int, matches: list, totals: list,
                         smooth_method: str = "exp", smooth_value=None,
                         effective_order: bool = False) -> BLEUScore:
    """BLEU = BP * exp(mean_n log p_n) from pooled counts (see the module docstring).

    ``effective_order`` averages the log-precisions only over the orders that have any
    hypothesis n-gram, instead of letting a missing order zero the score.
    """
    if smooth_value is None:
        smooth_value = SMOOTH_DEFAULTS[smooth_method]
    bp = brevity_penalty(sys_len, ref_len)
    ratio = sys_len / ref_len if ref_len else 0
    if not any(matches):
        return BLEUScore(0.0, [0.0] * MAX_ORDER, bp, ratio, sys_len, ref_len,
                         list(matches), list(totals))
    precisions, orders_seen = _precisions(matches, totals, smooth_method, smooth_value)
    order = max(orders_seen, 1) if effective_order else MAX_ORDER
    log_sum = sum(math.log(p) if p else _LOG_OF_ZERO for p in precisions[:order])
    score = bp * math.exp(log_sum / order)
    return BLEUScore(score, precisions, bp, ratio, sys_len, ref_len, list(matches), list(totals))


# ---------------------------------------------------------------- checking the input

def _reference_streams(references, n_hypotheses: int) -> list:
    """The references as a list of streams, each checked to hold one string per hypothesis."""
    if isinstance(references, str):
        raise TypeError("references must be a list of strings (one stream) or a list of "
                        "streams, not a single string")
    references = list(references)
    if not references:
        raise ValueError("no references given")
    if isinstance(references[0], str):
        references = [references]
    streams = []
    for index, stream in enumerate(references):
        if isinstance(stream, str):
            raise TypeError(f"reference stream {index} is a string; mix no strings with "
                            "streams (lists of strings)")
        stream = list(stream)
        _check_strings(stream, f"reference stream {index}")
        if len(stream) != n_hypotheses:
            raise ValueError(f"reference stream {index} has {len(stream)} lines but there "
                             f"are {n_hypotheses} hypotheses")
        streams.append(stream)
    return streams


def _check_strings(lines: list, what: str) -> None:
    for line_number, line in enumerate(lines):
        if not isinstance(line, str):
            raise TypeError(f"{what}[{line_number}] is {type(line).__name__}, not str")


def _check_options(tokenize: str, smooth_method: str) -> None:
    if tokenize not in TOKENIZERS:
        raise ValueError(f"unknown tokenize={tokenize!r}; choose one of {TOKENIZERS}")
    if smooth_method not in SMOOTH_DEFAULTS:
        raise ValueError(f"unknown smooth_method={smooth_method!r}; choose one of "
                         f"{tuple(SMOOTH_DEFAULTS)}")


# ---------------------------------------------------------------- the public functions

def corpus_bleu(hypotheses, references, tokenize: str = "13a", smooth_method: str = "exp",
                lowercase: bool = False, smooth_value=None,
                effective_order: bool = False) -> BLEUScore:
    """Corpus BLEU of ``hypotheses`` (a list of strings) against ``references`` (a list of
    reference streams, each one string per hypothesis, or one flat stream), equal to
    ``sacrebleu.corpus_bleu`` with the same options.

    ``tokenize`` is "13a" (mteval-v13a, the default) or "none" (split on white space);
    ``smooth_method`` "exp" (default), "floor", "add-k" or "none", with ``smooth_value``
    for the latter two's constant. Counts are pooled over the corpus before dividing.
    """
    _check_options(tokenize, smooth_method)
    if isinstance(hypotheses, str):
        raise TypeError("hypotheses must be a list of strings, not a single string")
    hypotheses = list(hypotheses)
    if not hypotheses:
        raise ValueError("no hypotheses given: BLEU needs at least one segment")
    _check_strings(hypotheses, "hypotheses")
    streams = _reference_streams(references, len(hypotheses))
    sys_len, ref_len = 0, 0
    matches, totals = [0] * MAX_ORDER, [0] * MAX_ORDER
    for hyp, refs in zip(hypotheses, zip(*streams)):
        stats = _segment_statistics(_tokens(hyp, tokenize, lowercase),
                                    [_tokens(ref, tokenize, lowercase) for ref in refs])
        sys_len, ref_len = sys_len + stats[0], ref_len + stats[1]
        matches = [a + b for a, b in zip(matches, stats[2])]
        totals = [a + b for a, b in zip(totals, stats[3])]
    return bleu_from_statistics(sys_len, ref_len, matches, totals, smooth_method,
                                smooth_value, effective_order)


def sentence_bleu(hypothesis: str, references, tokenize: str = "13a",
                  smooth_method: str = "exp", lowercase: bool = False, smooth_value=None,
                  effective_order: bool = True) -> BLEUScore:
    """BLEU of one ``hypothesis`` against its ``references`` (a string or a list of strings),
    equal to ``sacrebleu.sentence_bleu``: exp smoothing and effective order by default.

    BLEU is a corpus metric; a sentence's score is noisy and the mean of sentence scores is
    not corpus BLEU.
    """
    if not isinstance(hypothesis, str):
        raise TypeError(f"hypothesis is {type(hypothesis).__name__}, not str")
    references = [references] if isinstance(references, str) else list(references)
    if not references:
        raise ValueError("no references given")
    _check_strings(references, "references")
    return corpus_bleu([hypothesis], [[ref] for ref in references], tokenize, smooth_method,
                       lowercase, smooth_value, effective_order)
