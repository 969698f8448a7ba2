"""tinylm.bleu: corpus and sentence BLEU, checked by hand and against sacreBLEU (a test-only
oracle, skipped where it is not installed) on random corpora, edge cases and real French."""

import math
import random

import pytest

from tinylm.bleu import BLEUScore, corpus_bleu, sentence_bleu, tokenize_13a
from tinylm.data.datasets import data_dir_from_env, shared_data_dirs

sacrebleu = pytest.importorskip("sacrebleu")

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "Le", "chat", "est", "là",
         "well-known", "don't", "U.S.", "e-mail", "3.14", "1,000", "1990-2000", "42", "x-",
         "&quot;", "&amp;", "&lt;b&gt;", "&#39;", "<skipped>", '"', "'", "(", ")", ".", ",",
         "!", "?", ":", ";", "-", "--", "...", "$5", "50%", "a/b", "#1", "@you", "[x]",
         "{y}", "~", "`", "^", "_", "|", "\\", "*", "+", "=", "é", "Ça", "naïve", "中文",
         "猫", "١٢٣", "½", "5.", ".5", ",7", "7,", "a.b", "a,b", "1.a", "a.1", "-\n", "\n",
         "\t", "  "]


def random_line(rnd: random.Random, max_words: int = 15) -> str:
    """Words and punctuation glued together or spaced apart at random."""
    pieces = []
    for _ in range(rnd.randint(0, max_words)):
        pieces.append(rnd.choice(WORDS))
        pieces.append(rnd.choice([" ", " ", " ", "", "-", ".", ","]))
    return "".join(pieces)


def perturbed(rnd: random.Random, line: str) -> str:
    """A hypothesis near ``line``: some words dropped, some swapped, some replaced."""
    words = [w for w in line.split() if rnd.random() > 0.15]
    for i in range(len(words) - 1):
        if rnd.random() < 0.1:
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(rnd.choice(WORDS) if rnd.random() < 0.05 else w for w in words)


def assert_same_as_sacrebleu(hyps, refs, **options):
    """tinylm's score to 1e-9 and its precisions, BP and lengths exactly, as sacreBLEU's."""
    ours = corpus_bleu(hyps, refs, **options)
    oracle = sacrebleu.corpus_bleu(hyps, refs, **_sacrebleu_options(options))
    assert math.isclose(ours.score, oracle.score, rel_tol=0, abs_tol=1e-9), (ours, oracle)
    assert ours.precisions == oracle.precisions
    assert (ours.bp, ours.sys_len, ours.ref_len) == (oracle.bp, oracle.sys_len, oracle.ref_len)
    if options.get("smooth_method") != "add-k":     # sacreBLEU adds k into its counts
        assert (ours.counts, ours.totals) == (oracle.counts, oracle.totals)
    assert str(ours) == str(oracle)
    return ours


def _sacrebleu_options(options: dict) -> dict:
    options = dict(options)
    if "effective_order" in options:
        options["use_effective_order"] = options.pop("effective_order")
    return options


# ---------------------------------------------------------------- by hand

def test_by_hand_one_segment():
    """hyp "the the cat" vs ref "the cat": unigrams clipped to the=1 cat=1 -> 2/3; bigrams
    "the the" (no), "the cat" (yes) -> 1/2; no 3-grams in the ref -> exp smoothing 1/(2*1);
    no 4-gram in the hyp -> precision 0 -> BLEU 0 (corpus BLEU has no effective order)."""
    score = corpus_bleu(["the the cat"], [["the cat"]])
    assert score.counts == [2, 1, 0, 0] and score.totals == [3, 2, 1, 0]
    assert score.precisions[:3] == pytest.approx([200 / 3, 50.0, 50.0])
    assert score.score == 0.0 and score.bp == 1.0
    with_effective = corpus_bleu(["the the cat"], [["the cat"]], effective_order=True)
    assert with_effective.score == pytest.approx((200 / 3 * 50 * 50) ** (1 / 3))


def test_brevity_penalty_by_hand():
    """c = 4 words against r = 8: BP = exp(1 - 8/4) = e^-1, precisions all 100."""
    score = corpus_bleu(["a b c d"], ["a b c d e f g h"])
    assert score.bp == pytest.approx(math.exp(-1))
    assert score.score == pytest.approx(100 * math.exp(-1))
    assert (score.sys_len, score.ref_len, score.ratio) == (4, 8, 0.5)


def test_closest_reference_length_ties_to_the_shorter():
    """hyp of 3 words, refs of 2 and 4: equally near, r = 2 is used."""
    score = corpus_bleu(["a b c"], [["a b"], ["a b c d"]])
    assert score.ref_len == 2


def test_tokenize_13a_by_hand():
    assert tokenize_13a("Hello, world! 3.14 and 1,000.") == [
        "Hello", ",", "world", "!", "3.14", "and", "1,000", "."]
    assert tokenize_13a("well-known 1990-2000 don't") == [
        "well-known", "1990", "-", "2000", "don't"]
    # the entities are replaced one after the other, so "&amp;lt;" becomes "&lt;", then "<"
    assert tokenize_13a("&quot;hi&quot; &amp;lt; <skipped>e-\nmail") == [
        '"', "hi", '"', "<", "email"]


@pytest.mark.parametrize("seed", range(5))
def test_tokenize_13a_matches_sacrebleu(seed):
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    rnd, oracle = random.Random(seed), Tokenizer13a()
    for _ in range(400):
        line = random_line(rnd).rstrip()
        assert tokenize_13a(line) == oracle(line).split(), repr(line)


def test_str_looks_like_sacrebleus():
    text = str(corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]))
    assert text.startswith("BLEU = ") and "(BP = 1.000 ratio = 1.000 hyp_len = 6" in text
    assert isinstance(corpus_bleu(["a"], ["a"]), BLEUScore)


# ---------------------------------------------------------------- against sacreBLEU

@pytest.mark.parametrize("seed", range(40))
def test_random_corpora_one_reference(seed):
    rnd = random.Random(seed)
    refs = [random_line(rnd) for _ in range(rnd.randint(1, 30))]
    hyps = [perturbed(rnd, r) if rnd.random() < 0.7 else random_line(rnd) for r in refs]
    assert_same_as_sacrebleu(hyps, [refs])


@pytest.mark.parametrize("seed", range(40))
def test_random_corpora_several_references(seed):
    rnd = random.Random(1000 + seed)
    n_lines, n_refs = rnd.randint(1, 20), rnd.randint(2, 4)
    refs = [[random_line(rnd) for _ in range(n_lines)] for _ in range(n_refs)]
    hyps = [perturbed(rnd, rnd.choice(refs)[i]) for i in range(n_lines)]
    assert_same_as_sacrebleu(hyps, refs)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("options", [
    {"tokenize": "none"}, {"lowercase": True}, {"smooth_method": "floor"},
    {"smooth_method": "add-k"}, {"smooth_method": "none"}, {"effective_order": True},
    {"smooth_method": "floor", "smooth_value": 0.3}, {"smooth_method": "add-k", "smooth_value": 2},
], ids=str)
def test_random_corpora_with_options(seed, options):
    rnd = random.Random(2000 + seed)
    refs = [random_line(rnd, max_words=6) for _ in range(rnd.randint(1, 8))]
    hyps = [perturbed(rnd, r) for r in refs]
    assert_same_as_sacrebleu(hyps, [refs], **options)


@pytest.mark.parametrize("seed", range(30))
def test_sentence_bleu_matches_sacrebleu(seed):
    rnd = random.Random(3000 + seed)
    refs = [random_line(rnd, max_words=10) for _ in range(rnd.randint(1, 3))]
    hyp = perturbed(rnd, refs[0])
    ours, oracle = sentence_bleu(hyp, refs), sacrebleu.sentence_bleu(hyp, refs)
    assert math.isclose(ours.score, oracle.score, rel_tol=0, abs_tol=1e-9)
    assert (ours.precisions, ours.bp, ours.sys_len, ours.ref_len) == (
        oracle.precisions, oracle.bp, oracle.sys_len, oracle.ref_len)


@pytest.mark.parametrize("hyps, refs", [
    ([""], [[""]]),
    (["", ""], [["a b", ""]]),
    (["a b c"], [[""]]),
    (["", "the cat"], [["the cat sat", "the cat"]]),
    (["the cat sat on the mat today"], [["the cat sat on the mat today"]]),
    (["completely different words here"], [["nothing in common at all"]]),
    (["the cat"], [["the cat sat on the mat with a hat"]]),
    (["the"], [["the cat"]]),
    (["Le garçon a mangé une pomme à midi ."], [["Le garçon a mangé la pomme à midi."]]),
    (["猫 在 桌子 上", "我爱中文。"], [["猫 在 桌 上", "我爱中文！"]]),
    (["Ça va très bien, merci !"], [["ça va très bien, merci!"]]),
], ids=repr)
def test_edge_cases_match_sacrebleu(hyps, refs):
    assert_same_as_sacrebleu(hyps, refs)
    assert_same_as_sacrebleu(hyps, refs, lowercase=True)


def test_identical_is_100_and_disjoint_is_0():
    lines = ["the cat sat on the mat .", "a dog ran in the park today"]
    assert assert_same_as_sacrebleu(lines, [lines]).score == pytest.approx(100.0)
    assert assert_same_as_sacrebleu(["x y z w v"], [["a b c d e"]]).score == 0.0


def _fra_eng_lines(limit: int = 500):
    folders = [d for d in [data_dir_from_env(), *shared_data_dirs()] if d is not None]
    for folder in folders:
        path = folder / "translation" / "fra-eng" / "fra.txt"
        if path.is_file():
            with path.open(encoding="utf-8") as lines:
                return [next(lines).rstrip("\n").split("\t") for _ in range(limit)]
    pytest.skip("translation/fra-eng/fra.txt is not in the data folders")


def test_real_french_corpus_matches_sacrebleu():
    rnd = random.Random(7)
    french = [columns[1] for columns in _fra_eng_lines()]
    hyps = [perturbed(rnd, line) for line in french]
    score = assert_same_as_sacrebleu(hyps, [french])
    assert 20 < score.score < 100
    english = [columns[0] for columns in _fra_eng_lines()]
    assert_same_as_sacrebleu(hyps, [french, english])


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("hyps, refs, error, message", [
    (["a", "b"], [["a"]], ValueError, "reference stream 0 has 1 lines but there are 2 hyp"),
    (["a"], [["a"], ["a", "b"]], ValueError, "reference stream 1 has 2 lines"),
    (["a", None], [["a", "b"]], TypeError, r"hypotheses\[1\] is NoneType"),
    (["a"], [[3]], TypeError, r"reference stream 0\[0\] is int"),
    ([], [[]], ValueError, "no hypotheses"),
    ("a b", ["a b"], TypeError, "not a single string"),
    (["a"], "a", TypeError, "not a single string"),
    (["a"], [], ValueError, "no references"),
], ids=repr)
def test_clear_errors(hyps, refs, error, message):
    with pytest.raises(error, match=message):
        corpus_bleu(hyps, refs)


def test_unknown_options_are_errors():
    with pytest.raises(ValueError, match="unknown tokenize='intl'"):
        corpus_bleu(["a"], ["a"], tokenize="intl")
    with pytest.raises(ValueError, match="unknown smooth_method"):
        corpus_bleu(["a"], ["a"], smooth_method="laplace")


def test_flat_reference_list_is_one_stream():
    assert corpus_bleu(["a b", "c d"], ["a b", "c d"]) == corpus_bleu(["a b", "c d"],
                                                                      [["a b", "c d"]])


def test_evaluate_reexports_it():
    import tinylm.evaluate
    assert tinylm.evaluate.corpus_bleu is corpus_bleu
