"""tinylm.data.tfidf: the three analyzers, parity with scikit-learn's TfidfVectorizer (a
test-only oracle, skipped when it is not installed), saving, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinylm.data.tfidf import TfidfVectorizer, char_ngrams, char_wb_ngrams, word_ngrams
from tinylm.functional.sparse_linear import check_csr, csr_to_dense

CORPUS = [
    "Hello world, hello  WORLD!",
    "A cat sat on the mat.\tThe cat sat.",
    "naïve café: résumé, Über-straße",
    "I",                                              # no word token: an empty word row
    "don't stop   believing\n\nnow, the cat",
    "x y z xy yz xyz",
    "Call 08712460324 now!! £1000 cash, or text WIN to 85069",
    "the world is a cat; the cat is the world",
    "  leading and trailing spaces  ",
    "日本語 テキスト 日本",
]
UNSEEN = ["a new cat on the block", "zzz qqq", "", "WORLD world world"]

SETTINGS = [
    dict(analyzer="word"),
    dict(analyzer="word", ngram_range=(1, 2)),
    dict(analyzer="word", ngram_range=(2, 3), lowercase=False),
    dict(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
    dict(analyzer="word", max_df=0.25),
    dict(analyzer="word", min_df=0.15, max_df=3),
    dict(analyzer="char_wb", ngram_range=(2, 5)),
    dict(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
    dict(analyzer="char_wb", ngram_range=(3, 7), min_df=2),
    dict(analyzer="char", ngram_range=(2, 5)),
    dict(analyzer="char", ngram_range=(1, 4), max_df=0.5, lowercase=False),
    dict(analyzer="word", max_features=3),            # the, cat, world: no tie at the cut
]


@pytest.fixture(scope="module")
def sklearn_text():
    return pytest.importorskip("sklearn.feature_extraction.text")


def test_word_ngrams_use_tokens_of_two_or_more_word_characters():
    assert word_ngrams("i can't stop, ok", (1, 2)) == ["can", "stop", "ok", "can stop",
                                                       "stop ok"]
    assert word_ngrams("one two", (3, 3)) == []


def test_char_wb_pads_words_and_counts_a_short_word_once():
    assert char_wb_ngrams("ab cde", (3, 4)) == [" ab", "ab ", " ab ", " cd", "cde", "de ",
                                               " cde", "cde "]
    assert char_wb_ngrams("a", (2, 5)) == [" a", "a ", " a "]   # n = 3 takes all; no 4, 5


def test_char_collapses_whitespace_runs_only():
    assert char_ngrams("a  b\tc", (3, 3)) == ["a b", " b\t", "b\tc"]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in
                                                                     s.items()))
def test_features_equal_scikit_learns(settings, sklearn_text):
    ours = TfidfVectorizer(**settings)
    theirs = sklearn_text.TfidfVectorizer(**settings)
    X = ours.fit_transform(CORPUS)
    expected = theirs.fit_transform(CORPUS).toarray()
    assert ours.feature_names == list(theirs.get_feature_names_out())
    np.testing.assert_allclose(ours.idf, theirs.idf_, rtol=1e-15)
    np.testing.assert_allclose(csr_to_dense(X), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(csr_to_dense(ours.transform(UNSEEN)),
                               theirs.transform(UNSEEN).toarray(), rtol=1e-12, atol=1e-15)


def test_rows_are_csr_with_sorted_columns_and_unit_norm():
    X = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit_transform(CORPUS + [""])
    check_csr(X)
    assert X.data.dtype == np.float64 and X.shape[0] == len(CORPUS) + 1
    for i in range(X.shape[0]):
        cols = X.indices[X.indptr[i]:X.indptr[i + 1]]
        assert (np.diff(cols) > 0).all()
    norms = np.linalg.norm(csr_to_dense(X), axis=1)
    np.testing.assert_allclose(norms[:-1], 1.0, rtol=1e-12)
    assert norms[-1] == 0.0                               # the empty text: an empty row


def test_max_features_breaks_ties_alphabetically():
    docs = ["bb aa cc dd", "bb aa cc", "zz yy"]             # aa, bb, cc tie at 2
    vec = TfidfVectorizer(max_features=2).fit(docs)
    assert vec.feature_names == ["aa", "bb"]


def test_to_dict_is_json_and_restores_the_same_features():
    vec = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    X = vec.fit_transform(CORPUS)
    back = TfidfVectorizer.from_dict(json.loads(json.dumps(vec.to_dict())))
    assert back.settings() == vec.settings() and back.feature_names == vec.feature_names
    Y = back.transform(CORPUS)
    for a, b in zip(X[:3], Y[:3]):
        np.testing.assert_array_equal(a, b)               # float64 survives JSON exactly


def test_from_dict_refuses_a_damaged_state():
    state = TfidfVectorizer().fit(CORPUS).to_dict()
    with pytest.raises(ValueError, match="not a tinylm.tfidf/1 state"):
        TfidfVectorizer.from_dict({**state, "format": "other"})
    with pytest.raises(ValueError, match="damaged"):
        TfidfVectorizer.from_dict({**state, "idf": state["idf"][:-1]})
    with pytest.raises(ValueError, match="damaged"):
        TfidfVectorizer.from_dict({**state, "vocabulary": state["vocabulary"][::-1]})


def test_bad_input_is_named():
    with pytest.raises(TypeError, match=r"wrap it in a list"):
        TfidfVectorizer().fit("one text")
    with pytest.raises(TypeError, match="text 1 is a int"):
        TfidfVectorizer().fit(["ok text", 3])
    with pytest.raises(RuntimeError, match="call fit"):
        TfidfVectorizer().transform(["text"])
    with pytest.raises(ValueError, match="no texts"):
        TfidfVectorizer().fit([])
    with pytest.raises(ValueError, match="empty vocabulary"):
        TfidfVectorizer().fit(["a b", "?"])
    with pytest.raises(ValueError, match="unknown analyzer"):
        TfidfVectorizer(analyzer="chars")
    with pytest.raises(ValueError, match="1 <= min_n <= max_n"):
        TfidfVectorizer(ngram_range=(2, 1))
    with pytest.raises(ValueError, match="float in \\[0, 1\\]"):
        TfidfVectorizer(max_df=1.5)
    with pytest.raises(TypeError, match="int or a float"):
        TfidfVectorizer(min_df=True)
    with pytest.raises(ValueError, match="lower min_df or raise max_df"):
        TfidfVectorizer(min_df=5, max_df=2).fit(CORPUS)
    with pytest.raises(ValueError, match="no term occurs"):
        TfidfVectorizer(min_df=10).fit(CORPUS)
