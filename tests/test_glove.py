"""GloVe: co-occurrence counts, the weighting, the objective, the AdaGrad kernel, the trainer."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from tinylm.embeddings.cooccurrence import count_cooccurrences
from tinylm.embeddings.glove import STATE_NAMES, GloVe, GloVeConfig
from tinylm.functional.glove import (glove_backward, glove_forward, glove_weighting,
                                     gradcheck_cases)
from tinylm.kernels.glove import GRAD_CLIP, glove_epoch


def corpus_of(sentences):
    """ids int32 [N] and sentence_starts int64 [S + 1] of a list of id lists."""
    lengths = [len(s) for s in sentences]
    ids = np.array([i for s in sentences for i in s], dtype=np.int32)
    return ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


# ---------------------------------------------------------------- co-occurrence counts

# Sentences [0 1 2], [2 0], [3 3] with window 2. Left-context pairs (row = earlier word),
# with their distances: (0,1,1) (1,2,1) (0,2,2) | (2,0,1) | (3,3,1). The last word of the
# first sentence (2) and the first of the second (2) are neighbours in ids but must not pair.
HAND_SENTENCES = [[0, 1, 2], [2, 0], [3, 3]]


def hand_counts(distance_weighting: bool, symmetric: bool) -> np.ndarray:
    X = np.zeros((4, 4))
    for i, j, d in [(0, 1, 1), (1, 2, 1), (0, 2, 2), (2, 0, 1), (3, 3, 1)]:
        weight = 1.0 / d if distance_weighting else 1.0
        X[i, j] += weight
        if symmetric:
            X[j, i] += weight
    return X


@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "left-only"])
@pytest.mark.parametrize("distance_weighting", [True, False], ids=["1/d", "unweighted"])
def test_cooccurrence_counts_equal_a_hand_computation(distance_weighting, symmetric):
    ids, starts = corpus_of(HAND_SENTENCES)
    counts = count_cooccurrences(ids, starts, 4, window=2, distance_weighting=distance_weighting,
                                 symmetric=symmetric)
    expected = hand_counts(distance_weighting, symmetric)
    np.testing.assert_allclose(counts.to_dense(), expected, rtol=0, atol=1e-15)
    assert counts.rows.dtype == np.int32 and counts.cols.dtype == np.int32
    assert np.all(counts.values > 0) and len(counts) == np.count_nonzero(expected)
    assert expected[2, 2] == 0                        # no pair across the sentence boundary
    assert expected[3, 3] == (2.0 if symmetric else 1.0)


def brute_force_counts(sentences, V, window, distance_weighting, symmetric):
    X = np.zeros((V, V))
    for s in sentences:
        for t in range(len(s)):
            for d in range(1, window + 1):
                if t + d < len(s):
                    weight = 1.0 / d if distance_weighting else 1.0
                    X[s[t], s[t + d]] += weight
                    if symmetric:
                        X[s[t + d], s[t]] += weight
    return X


@pytest.mark.parametrize("chunk_tokens", [1_000_000, 7], ids=["one chunk", "many chunks"])
@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "left-only"])
def test_cooccurrence_counts_equal_brute_force_and_come_sorted(symmetric, chunk_tokens):
    rng = np.random.default_rng(0)
    sentences = [list(rng.integers(0, 9, size=n)) for n in [0, 1, 12, 3, 30, 2, 0, 17]]
    ids, starts = corpus_of(sentences)
    counts = count_cooccurrences(ids, starts, 9, window=4, symmetric=symmetric,
                                 chunk_tokens=chunk_tokens)
    np.testing.assert_allclose(counts.to_dense(), brute_force_counts(sentences, 9, 4, True,
                                                                     symmetric), atol=1e-12)
    keys = counts.rows.astype(np.int64) * 9 + counts.cols
    assert np.all(np.diff(keys) > 0), "entries must be sorted by (row, col), each once"


@pytest.mark.parametrize("change, message", [
    (lambda ids, starts: (ids + 5, starts), "outside the vocabulary"),
    (lambda ids, starts: (ids, starts[:-1]), "sentence_starts must rise"),
    (lambda ids, starts: (ids.astype(np.float32), starts), "integer array"),
])
def test_cooccurrence_names_bad_input(change, message):
    ids, starts = corpus_of(HAND_SENTENCES)
    with pytest.raises((ValueError, TypeError), match=message):
        count_cooccurrences(*change(ids, starts), 4, window=2)
    with pytest.raises(ValueError, match="window=0"):
        count_cooccurrences(ids, starts, 4, window=0)


# ---------------------------------------------------------------- the objective

def test_weighting_function_rises_to_one_at_x_max_and_stays_there():
    x = np.array([1.0, 25.0, 50.0, 99.0, 100.0, 101.0, 1e6], dtype=np.float32)
    f = glove_weighting(x, x_max=100.0, alpha=0.75)
    assert f.dtype == np.float32
    np.testing.assert_allclose(f[:4], (x[:4] / 100.0) ** 0.75, rtol=1e-6)
    np.testing.assert_array_equal(f[4:], 1.0)
    assert np.all(np.diff(f) >= 0)
    np.testing.assert_allclose(glove_weighting(np.array([10.0]), x_max=10.0, alpha=0.5), 1.0)
    with pytest.raises(ValueError, match="x_max=0"):
        glove_weighting(x, x_max=0)


def test_forward_is_half_the_weighted_squared_residuals_and_backward_checks():
    rng = np.random.default_rng(1)
    w, wt = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    b, bt, log_x = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    f = rng.random(5)
    loss, cache = glove_forward(w, wt, b, bt, log_x, f)
    e = np.einsum("md,md->m", w, wt) + b + bt - log_x
    assert math.isclose(loss, 0.5 * np.sum(f * e * e), rel_tol=1e-13)
    dw, dwt, db, dbt = glove_backward(2.0, cache)
    np.testing.assert_allclose(dw, 2.0 * (f * e)[:, None] * wt, rtol=1e-13)
    np.testing.assert_allclose(dbt, 2.0 * f * e, rtol=1e-13)
    report = gradcheck_cases()[0].run()
    assert report.passed, str(report)


# ---------------------------------------------------------------- the kernel

def adagrad_by_hand(order, rows, cols, log_x, weight, tables, gradsq, eta, clip):
    """glove.c's update, one entry at a time, from glove_forward / glove_backward."""
    W, Wt, b, bt = tables
    gW, gWt, gb, gbt = gradsq
    cost = 0.0
    for m in order:
        i, j = rows[m], cols[m]
        loss, cache = glove_forward(W[i:i + 1], Wt[j:j + 1], b[i:i + 1], bt[j:j + 1],
                                    log_x[m:m + 1], weight[m:m + 1])
        dw, dwt, db, dbt = glove_backward(1.0, cache)
        cost += loss
        u_i, u_j = eta * np.clip(dw[0], -clip, clip), eta * np.clip(dwt[0], -clip, clip)
        W[i] -= u_i / np.sqrt(gW[i])
        Wt[j] -= u_j / np.sqrt(gWt[j])
        gW[i] += u_i ** 2
        gWt[j] += u_j ** 2
        b[i] -= db[0] / np.sqrt(gb[i])                # glove.c: no eta on the biases
        bt[j] -= dbt[0] / np.sqrt(gbt[j])
        gb[i] += db[0] ** 2
        gbt[j] += dbt[0] ** 2
    return cost


def small_problem(seed=2, V=5, D=3, M=7):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, V, M).astype(np.int32)
    cols = rng.integers(0, V, M).astype(np.int32)
    x = rng.choice([0.5, 2.0, 30.0, 150.0], M)
    tables = [rng.standard_normal((V, D)), rng.standard_normal((V, D)),
              rng.standard_normal(V), rng.standard_normal(V)]
    gradsq = [np.ones_like(t) for t in tables]
    return rows, cols, np.log(x), glove_weighting(x), tables, gradsq


@pytest.mark.parametrize("clip", [GRAD_CLIP, 0.3], ids=["glove.c clip", "clip active"])
def test_serial_kernel_replays_the_reference_update(clip):
    rows, cols, log_x, weight, tables, gradsq = small_problem()
    order = np.array([3, 0, 6, 3, 1, 5, 2, 4, 0])          # repeats: state carries over
    by_hand = [t.copy() for t in tables], [g.copy() for g in gradsq]
    expected = adagrad_by_hand(order, rows, cols, log_x, weight, *by_hand, 0.05, clip)
    cost = glove_epoch(order, rows, cols, log_x, weight, tables, gradsq, 0.05, threads=1,
                       grad_clip=clip)
    assert math.isclose(cost, expected, rel_tol=1e-12)
    for got, want in zip(tables + gradsq, by_hand[0] + by_hand[1]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_kernel_refuses_mixed_dtypes():
    rows, cols, log_x, weight, tables, gradsq = small_problem()
    tables[1] = tables[1].astype(np.float32)
    with pytest.raises(ValueError, match="one dtype"):
        glove_epoch(np.arange(7), rows, cols, log_x, weight, tables, gradsq, 0.05)


# ---------------------------------------------------------------- the trainer

def two_topic_corpus(sentences=300, length=8, stray=0.2, seed=0):
    """Words 0-9 belong to one topic, 10-19 to another; a sentence keeps to its topic but for
    a fraction ``stray`` of its words. (GloVe fits only the nonzero counts: with no strays
    the cross-topic counts would be absent, not small, and nothing would push the topics
    apart -- the biases alone fit a block of equal counts.)"""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 2, sentences)
    stray_word = rng.random((sentences, length)) < stray
    word_topic = np.where(stray_word, 1 - topic[:, None], topic[:, None])
    ids, starts = corpus_of(list(10 * word_topic + rng.integers(0, 10, (sentences, length))))
    counts = np.bincount(ids, minlength=20)
    words = [f"{'ab'[k // 10]}{k % 10}" for k in range(20)]
    corpus = SimpleNamespace(ids=ids, sentence_starts=starts, total_words=int(ids.size))
    return words, counts, corpus


def mean_cosines(vectors):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    topic = np.arange(20) // 10
    same = topic[:, None] == topic[None, :]
    off_diagonal = ~np.eye(20, dtype=bool)
    return cos[same & off_diagonal].mean(), cos[~same].mean()


def test_training_lowers_the_cost_and_separates_two_topics():
    words, counts, corpus = two_topic_corpus()
    model = GloVe(GloVeConfig(vector_size=8, window=4, x_max=10.0, epochs=20, workers=2),
                  words, counts)
    seen = []
    history = model.train(corpus, on_progress=lambda done, total, loss: seen.append(done))
    losses = [h["loss"] for h in history]
    assert seen == list(range(1, 21)) and len(history) == 20
    assert losses[-1] < 0.5 * losses[0]
    assert set(history[0]) == {"epoch", "seconds", "loss", "words_per_s", "entries_per_s"}
    within, across = mean_cosines(model.vectors)
    assert within > 0.5 and across < -0.3, (within, across)


def test_one_worker_is_deterministic_and_vectors_are_w_plus_w_tilde():
    words, counts, corpus = two_topic_corpus(sentences=60)
    config = GloVeConfig(vector_size=6, window=3, epochs=3, workers=1, seed=5)
    first, second = GloVe(config, words, counts), GloVe(config, words, counts)
    losses = [[h["loss"] for h in m.train(corpus)] for m in (first, second)]
    assert losses[0] == losses[1]
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert first.vectors.dtype == np.float32 and first.vectors.shape == (20, 6)
    np.testing.assert_array_equal(first.vectors, first.w + first.w_tilde)
    other = GloVe(GloVeConfig(vector_size=6, window=3, epochs=3, workers=1, seed=6), words,
                  counts)
    assert not np.array_equal(other.w, GloVe(config, words, counts).w)


def test_initialisation_is_glove_c_uniform_over_d():
    words, counts, _ = two_topic_corpus(sentences=10)
    model = GloVe(GloVeConfig(vector_size=4), words, counts)
    for name in ("w", "w_tilde", "b", "b_tilde"):
        table = getattr(model, name)
        assert table.dtype == np.float32 and np.all(np.abs(table) <= 0.5 / 4)
        np.testing.assert_array_equal(getattr(model, f"gradsq_{name}"), 1.0)


def test_state_dict_round_trips_and_names_what_does_not_fit():
    words, counts, corpus = two_topic_corpus(sentences=40)
    config = GloVeConfig(vector_size=5, window=2, epochs=2, workers=1)
    trained = GloVe(config, words, counts)
    trained.train(corpus)
    state = trained.state_dict()
    assert set(state) == set(STATE_NAMES)
    fresh = GloVe(config, words, counts)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.vectors, trained.vectors)
    with pytest.raises(KeyError, match="missing arrays \\['gradsq_b_tilde'\\]"):
        fresh.load_state_dict({k: v for k, v in state.items() if k != "gradsq_b_tilde"})
    with pytest.raises(ValueError, match="w_tilde is \\(20, 4\\)"):
        fresh.load_state_dict({**state, "w_tilde": np.zeros((20, 4), np.float32)})
    with pytest.raises(ValueError, match="b is .* of float64"):
        fresh.load_state_dict({**state, "b": np.zeros(20)})
    np.testing.assert_array_equal(fresh.vectors, trained.vectors)   # nothing was changed


@pytest.mark.parametrize("field, value", [
    ("vector_size", 0), ("window", 0), ("min_count", 0), ("epochs", -1), ("workers", 0),
    ("x_max", 0.0), ("alpha", -0.5), ("learning_rate", float("nan")), ("seed", -1),
    ("symmetric", 1), ("window", 2.5),
])
def test_config_range_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"GloVeConfig.{field}="):
        GloVeConfig(**{field: value})


def test_glove_refuses_counts_of_another_vocabulary():
    words, counts, corpus = two_topic_corpus(sentences=10)
    model = GloVe(GloVeConfig(vector_size=4, epochs=1), words, counts)
    other = count_cooccurrences(corpus.ids, corpus.sentence_starts, 25)
    with pytest.raises(ValueError, match="over 25 words"):
        model.fit(other)
    with pytest.raises(ValueError, match="one count per word"):
        GloVe(GloVeConfig(), words, counts[:-1])
