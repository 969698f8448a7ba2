"""Word vectors and their evaluations (tinylm/embeddings/vectors.py, evaluation.py,
projection.py) against gensim 4.4 and scipy on the SAME vectors: the same neighbours and
cosines, the same analogy counts, the same correlations, files each can read from the
other. gensim and scipy are test-only oracles; tinylm itself never imports them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tinylm.data import dataset_path
from tinylm.embeddings.evaluation import (NoUsablePairsError, average_ranks, evaluate_all,
                                          evaluate_analogies, evaluate_similarity,
                                          evaluate_word_pairs, pearson, spearman)
from tinylm.embeddings.projection import pca_2d
from tinylm.embeddings.vectors import (UnknownWordError, WordVectors, WordVectorsFormatError)

D = 48
NOISE = 1.6      # of the analogy offsets: some questions solved, not all


# --- the shared vocabulary: the evaluation sets' words, lower-cased, with structure -----

def _analogy_sections():
    sections = []
    for line in dataset_path("analogies").read_text(encoding="utf-8").splitlines():
        if line.startswith(": "):
            sections.append([])
        elif len(line.split()) == 4:
            sections[-1].append([w.lower() for w in line.split()])
    return sections


def _pair_words(name):
    words = []
    for line in dataset_path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            words += [w.lower() for w in line.split("\t")[:2]]
    return words


def _structured_vectors(seed=0):
    """Random vectors for the words of the three evaluation sets, with each analogy
    section's pairs (a, b) related by a shared offset plus noise, so some analogies are
    solved and some are not. Some words are left out (OOV questions and pairs), some have
    case variants close to them, after them ("Paris") or before them ("GREECE")."""
    rng = np.random.default_rng(seed)
    sections = _analogy_sections()
    words = list(dict.fromkeys([w for s in sections for q in s for w in q]
                               + _pair_words("wordsim353") + _pair_words("simlex999")))
    words = [w for i, w in enumerate(words) if i % 13 != 5]            # some OOV
    vec = {w: rng.normal(size=D) for w in words}
    for section in sections:
        offset = rng.normal(size=D)
        for a, b, c, d in section:
            for x, y in ((a, b), (c, d)):
                if x in vec and y in vec and rng.random() < 0.5:
                    vec[y] = vec[x] + offset + rng.normal(scale=NOISE, size=D)
    order = list(rng.permutation(words))
    variants_after = [w for w in order[:200:3] if w.isalpha()]
    variants_before = [w for w in order[1:200:5] if w.isalpha()]
    for w in variants_after:                        # "Paris" later than "paris"
        order.insert(order.index(w) + 1 + int(rng.integers(0, 50)), w.capitalize())
        vec[w.capitalize()] = vec[w] + rng.normal(scale=0.05, size=D)
    for w in variants_before:                       # "GREECE" earlier than "greece"
        order.insert(max(0, order.index(w) - 1 - int(rng.integers(0, 50))), w.upper())
        vec[w.upper()] = vec[w] + rng.normal(scale=0.05, size=D)
    # Six more spellings of the words most often b or c, so that all five candidates
    # gensim keeps can be case variants of question words.
    counts = Counter(w for s in sections for q in s for w in q[1:3] if w in vec)
    for w, _ in counts.most_common(3):
        for i in range(6):
            variant = w[:i] + w[i:].capitalize() if i < len(w) else w.upper()
            if variant not in vec:
                vec[variant] = vec[w] + rng.normal(scale=0.01, size=D)
                order.append(variant)
    words = list(dict.fromkeys(order))
    for extra in ("london", "paris", "london!", "berlin"):
        if extra not in vec:
            vec[extra] = rng.normal(size=D)
            words.append(extra)
    return words, np.stack([vec[w] for w in words])


@pytest.fixture(scope="module")
def structured():
    words, vectors = _structured_vectors()
    return WordVectors(words, vectors)


def _gensim_kv(wv, dtype=np.float64):
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors(wv.dim, dtype=dtype)
    kv.add_vectors(wv.words, wv.vectors.astype(dtype))
    return kv


@pytest.fixture(scope="module")
def random_float32():
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(1500)]
    return WordVectors(words, rng.normal(size=(1500, 32)).astype(np.float32))


# --- neighbours, analogies, similarity ---------------------------------------------------

@pytest.mark.parametrize("positive, negative", [
    ("w3", ()), (["w10", "w20"], ()), (["w5", "w6"], ["w7"]), (["w1", "w1"], ["w2"])])
def test_most_similar_matches_gensim(random_float32, positive, negative):
    kv = _gensim_kv(random_float32, dtype=np.float32)
    ours = random_float32.most_similar(positive, topn=15, negative=negative)
    theirs = kv.most_similar(positive=positive, negative=list(negative), topn=15)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-6)


def test_analogy_is_3cosadd_like_gensim(random_float32):
    kv = _gensim_kv(random_float32, dtype=np.float32)
    ours = random_float32.analogy("w1", "w2", "w3", topn=5)
    theirs = kv.most_similar(positive=["w2", "w3"], negative=["w1"], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-6)


def test_similarity_matches_gensim(random_float32):
    kv = _gensim_kv(random_float32, dtype=np.float32)
    for a, b in [("w0", "w1"), ("w9", "w9"), ("w100", "w1400")]:
        assert random_float32.similarity(a, b) == pytest.approx(kv.similarity(a, b), abs=1e-6)


def test_unknown_word_is_a_key_error_suggesting_case_and_spelling(structured):
    with pytest.raises(KeyError) as info:
        structured.index("Londn")
    assert isinstance(info.value, UnknownWordError)
    assert f"not in the vocabulary of {len(structured)} words" in str(info.value)
    assert "london" in info.value.suggestions
    with pytest.raises(UnknownWordError) as info:
        structured.vector("PaRiS")
    assert info.value.suggestions[0] == "paris"
    assert "'paris'" in str(info.value)
    with pytest.raises(UnknownWordError):
        structured.most_similar("no-such-word-at-all")


def test_constructor_refuses_duplicates_and_shape_mismatch():
    with pytest.raises(ValueError, match="'a' appears more than once"):
        WordVectors(["a", "b", "a"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2 words but 3 vectors"):
        WordVectors(["a", "b"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\[V, D\]"):
        WordVectors(["a", "b"], np.zeros(2))


# --- the word2vec text format ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_text_format_round_trips_through_gensim(tmp_path, dtype):
    gensim_models = pytest.importorskip("gensim.models")
    rng = np.random.default_rng(3)
    words = ["the", "naïve", "café", "日本", "a-b", "x"]
    values = rng.normal(size=(6, 5)) * 10.0 ** rng.integers(-8, 8, size=(6, 5))
    wv = WordVectors(words, values.astype(dtype))
    ours = wv.save_word2vec_format(tmp_path / "ours.txt")
    kv = gensim_models.KeyedVectors.load_word2vec_format(ours, binary=False, datatype=dtype)
    assert kv.index_to_key == words
    np.testing.assert_array_equal(kv.vectors, wv.vectors)
    back = WordVectors.load_word2vec_format(ours, dtype=dtype)
    assert back.words == words
    np.testing.assert_array_equal(back.vectors, wv.vectors)
    kv.save_word2vec_format(str(tmp_path / "theirs.txt"), binary=False)
    theirs = WordVectors.load_word2vec_format(tmp_path / "theirs.txt", dtype=dtype)
    assert theirs.words == words
    np.testing.assert_array_equal(theirs.vectors, kv.vectors)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_text_format_reads_word2vecs_trailing_space(tmp_path):
    path = tmp_path / "w2v.txt"
    path.write_text("2 3\nking 0.1 0.2 0.3 \nqueen 1 2 3 \n", encoding="utf-8")
    wv = WordVectors.load_word2vec_format(path)
    assert wv.words == ["king", "queen"] and wv.vector("queen").tolist() == [1, 2, 3]


def test_saving_a_word_with_a_space_is_refused(tmp_path):
    wv = WordVectors(["new york", "b"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="'new york'\\) is empty or contains whitespace"):
        wv.save_word2vec_format(tmp_path / "v.txt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, message", [
    ("", "line 1 must be the header 'V D'"),
    ("2 3 4\na 1 2 3\n", "line 1 must be the header 'V D'"),
    ("two 3\n", "line 1 must be the header 'V D'"),
    ("2 3\na 1 2 3\nb 1 2\n", "line 3 has 2 values after the word 'b', but the header says 3"),
    ("2 3\na 1 2 3\nb 1 x 3\n", "line 3 \\(word 'b'\\) has the non-numeric value 'x'"),
    ("3 3\na 1 2 3\nb 1 2 3\n", "the header says 3 words but the file has 2 lines"),
    ("2 3\na 1 2 3\na 1 2 3\n", "'a' appears on more than one line"),
])
def test_bad_text_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WordVectorsFormatError, match=message):
        WordVectors.load_word2vec_format(path)


def test_binary_file_is_refused_as_not_text(tmp_path):
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"1 2\nw \xff\xfe\x00\x00\x80\x3f\x00\x00\n")
    with pytest.raises(WordVectorsFormatError, match="binary word2vec format"):
        WordVectors.load_word2vec_format(path)


# --- evaluations against gensim ----------------------------------------------------------

def _gensim_analogies(kv, path, **options):
    score, sections = kv.evaluate_word_analogies(str(path), **options)
    per_section = [{"section": s["section"], "correct": len(s["correct"]),
                    "total": len(s["correct"]) + len(s["incorrect"])} for s in sections[:-1]]
    return score, per_section


def test_analogies_match_gensim(structured):
    ours = evaluate_analogies(structured)
    score, sections = _gensim_analogies(_gensim_kv(structured), dataset_path("analogies"))
    assert ours["sections"] == sections
    assert ours["accuracy"] == score
    assert ours["correct"] == sum(s["correct"] for s in sections)
    assert ours["total"] == sum(s["total"] for s in sections)
    assert ours["questions"] == 19544 and ours["skipped"] == 19544 - ours["total"]
    assert 0.1 < ours["accuracy"] < 0.9 and ours["skipped"] > 0     # the test tests something


def _small_questions_file(tmp_path):
    """Every 8th question of questions-words.txt, plus a blank line and a 3-word line that
    gensim ignores, and questions whose answer is one of their own words ("a b c b"), which
    only the fallback to the last candidate (all five are question words) can get right."""
    lines, n = [], 0
    for line in dataset_path("analogies").read_text(encoding="utf-8").splitlines():
        if line.startswith(": "):
            lines += [line, "", "only three words"]
        elif n % 8 == 0:
            a, b, c, _ = line.split()
            lines += [line, f"{a} {b} {c} {b}", f"{a} {b} {c} {c}"]
        n += 1
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("restrict_vocab, case_insensitive",
                         [(1200, True), (300000, False), (4, True)])
def test_analogies_match_gensim_restricted_and_case_sensitive(structured, tmp_path,
                                                              restrict_vocab, case_insensitive):
    path = _small_questions_file(tmp_path)
    options = {"restrict_vocab": restrict_vocab, "case_insensitive": case_insensitive}
    ours = evaluate_analogies(structured, path, **options)
    score, sections = _gensim_analogies(_gensim_kv(structured), path, **options)
    assert ours["sections"] == sections and ours["accuracy"] == score


def test_analogy_question_before_a_section_is_an_error(structured, tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("athens greece baghdad iraq\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1 comes before any section header"):
        evaluate_analogies(structured, path)


@pytest.fixture(scope="module")
def sign_vectors(structured):
    """The same words with vectors of +-1 entries in 64 dimensions: every norm is 8, so the
    unit vectors and all their dot products are exact in float64, in any summation order.
    Rounding then cannot break a true tie differently here and in gensim (it does on
    Gaussian vectors: simlex999 holds "sly strange" and "strange sly", whose cosines gensim
    computes 2e-17 apart), and the cosines, multiples of 1/64, have many ties to rank."""
    rng = np.random.default_rng(2)
    return WordVectors(structured.words, np.sign(rng.normal(size=(len(structured), 64))))


@pytest.mark.parametrize("name", ["wordsim353", "simlex999"])
@pytest.mark.parametrize("restrict_vocab, case_insensitive", [(300000, True), (1000, False)])
def test_word_pairs_match_gensim(sign_vectors, name, restrict_vocab, case_insensitive):
    options = {"restrict_vocab": restrict_vocab, "case_insensitive": case_insensitive}
    ours = evaluate_similarity(sign_vectors, name, **options)
    (r, _), (rho, _), oov_ratio = _gensim_kv(sign_vectors).evaluate_word_pairs(
        str(dataset_path(name)), **options)
    assert ours["spearman"] == pytest.approx(rho, abs=1e-9)
    assert ours["pearson"] == pytest.approx(r, abs=1e-9)
    assert ours["oov_ratio"] == pytest.approx(oov_ratio, abs=1e-12)
    assert ours["oov_pairs"] > 0 and ours["pairs"] > 20


def test_word_pairs_on_gaussian_vectors_match_gensim_to_rounding(structured):
    """On ordinary vectors the only difference is gensim's rounding of the one reversed
    pair of simlex999 (sign_vectors' docstring): rho agrees to 1e-6."""
    for name in ("wordsim353", "simlex999"):
        ours = evaluate_similarity(structured, name)
        (r, _), (rho, _), _ = _gensim_kv(structured).evaluate_word_pairs(str(dataset_path(name)))
        assert ours["spearman"] == pytest.approx(rho, abs=1e-6)
        assert ours["pearson"] == pytest.approx(r, abs=1e-12)


def test_word_pairs_skip_comments_and_bad_lines(structured, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("# comment\nlondon\tparis\t3\nlondon paris 4\nparis\tberlin\tmany\n"
                    "berlin\tlondon\t1.5\nlondon\tzzzz-unknown\t2\n", encoding="utf-8")
    result = evaluate_word_pairs(structured, path)
    assert (result["pairs"], result["oov_pairs"], result["invalid_lines"]) == (2, 1, 2)
    path.write_text("zzzz\tyyyy\t1\n", encoding="utf-8")
    with pytest.raises(NoUsablePairsError, match="no pair with both words"):
        evaluate_word_pairs(structured, path)


def test_evaluate_all_reports_scores_and_coverage(structured):
    summary = evaluate_all(structured)
    assert summary["analogies"] == evaluate_analogies(structured)["accuracy"]
    assert summary["wordsim353"] == evaluate_similarity(structured, "wordsim353")["spearman"]
    for name in ("analogies", "wordsim353", "simlex999"):
        assert 0.5 < summary[f"{name}_coverage"] < 1.0
    tiny = evaluate_all(WordVectors(["zzzz", "yyyy"], np.eye(2)))
    assert tiny["analogies"] is None and tiny["simlex999"] is None
    assert tiny["wordsim353_coverage"] == 0.0


# --- correlations by hand against scipy --------------------------------------------------

def test_spearman_and_pearson_match_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(11)
    x = rng.integers(0, 6, size=300).astype(float)                  # many ties
    y = 0.5 * x + rng.integers(0, 4, size=300)                      # ties, correlated
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    np.testing.assert_array_equal(average_ranks(x), stats.rankdata(x))
    assert average_ranks([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))


# --- projection --------------------------------------------------------------------------

def test_pca_2d_matches_covariance_eigendecomposition():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1]) + 7.0
    xy = pca_2d(x)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(x, rowvar=False))
    top = eigenvectors[:, np.argsort(eigenvalues)[::-1][:2]]
    top *= np.sign(top[np.argmax(np.abs(top), axis=0), [0, 1]])
    np.testing.assert_allclose(xy, (x - x.mean(0)) @ top, atol=1e-9)
    np.testing.assert_allclose(xy.var(axis=0, ddof=1), np.sort(eigenvalues)[::-1][:2])
    np.testing.assert_array_equal(pca_2d(x), xy)
    np.testing.assert_allclose(pca_2d(-x), -xy, atol=1e-9)   # the sign follows the data
    with pytest.raises(ValueError, match="V >= 2 rows and D >= 2 columns"):
        pca_2d(np.zeros((5, 1)))


# --- house rules -------------------------------------------------------------------------

def test_tinylm_embeddings_imports_neither_gensim_nor_scipy():
    """Imported with gensim, scipy and scikit-learn made unimportable (numba, which tinylm
    uses, tries scipy and does without): any import of them by tinylm would fail."""
    code = ("import sys\n"
            "for name in ('gensim', 'scipy', 'sklearn'): sys.modules[name] = None\n"
            "import tinylm.embeddings.vectors, tinylm.embeddings.evaluation\n"
            "import tinylm.embeddings.projection\n")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
