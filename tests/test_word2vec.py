"""Word2Vec: the corpus and its tables, the numba training kernel against a pair-by-pair replay
of the functional references, and the trainer (structure learned, determinism, errors).

The gradients of tinylm/functional/word2vec.py are checked by tests/test_functional_gradcheck.py
through its gradcheck_cases()."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.embeddings.corpus import (Corpus, corpus_from_text, cumulative_noise_table,
                                      keep_probabilities, keep_thresholds, noise_distribution)
from tinylm.embeddings.word2vec import Word2Vec, Word2VecConfig
from tinylm.functional.word2vec import (cbow_backward, cbow_forward, sgns_backward,
                                        sgns_forward, softmax_skipgram_backward,
                                        softmax_skipgram_forward)
from tinylm.kernels import word2vec as kernel

# --- corpus ------------------------------------------------------------------------------


def test_corpus_orders_by_count_then_first_occurrence_and_drops_rare_words():
    corpus = corpus_from_text("b a c a\nc b d\n\na z", min_count=2)
    assert corpus.words == ["a", "b", "c"]          # a: 3; b, c: 2 (b seen first)
    assert corpus.counts.tolist() == [3, 2, 2]
    assert corpus.ids.dtype == np.int32 and corpus.ids.tolist() == [1, 0, 2, 0, 2, 1, 0]
    assert corpus.sentence_starts.tolist() == [0, 4, 6, 7]     # the empty line is gone
    assert corpus.total_words == 9 and corpus.vocab_size == 3


def test_corpus_sees_the_sentences_gensim_sees():
    text = "the cat sat\n  the  dog\tsat \n\nthe end"
    corpus = corpus_from_text(text, min_count=1)
    sentences = [line.split() for line in text.splitlines() if line.split()]
    rebuilt = [[corpus.words[i] for i in corpus.ids[a:b]]
               for a, b in zip(corpus.sentence_starts[:-1], corpus.sentence_starts[1:])]
    assert rebuilt == sentences


def test_corpus_errors_name_the_problem():
    with pytest.raises(ValueError, match="no words"):
        corpus_from_text(" \n\n ")
    with pytest.raises(ValueError, match=r"3 distinct words and the most frequent is seen 2"):
        corpus_from_text("a a b c", min_count=5)
    with pytest.raises(ValueError, match="min_count"):
        corpus_from_text("a b", min_count=0)


# --- subsampling and noise tables ----------------------------------------------------------


def test_keep_probabilities_match_a_hand_computation():
    counts = np.array([1000, 100, 10, 1])
    sample = 1e-2
    t = sample * 1111                                   # threshold = sample * total = 11.11
    expected = [(np.sqrt(c / t) + 1) * t / c for c in (1000, 100)] + [1.0, 1.0]
    np.testing.assert_allclose(keep_probabilities(counts, sample), expected, rtol=1e-12)
    assert keep_probabilities(counts, 0.0).tolist() == [1.0] * 4
    assert keep_thresholds(np.array([1.0, 0.5])).tolist() == [2 ** 32, 2 ** 31]


def test_noise_draws_follow_counts_to_the_three_quarters():
    counts = np.array([500, 200, 80, 30, 10, 3])
    table = cumulative_noise_table(counts)
    assert table[-1] == 2 ** 31 - 1 and np.all(np.diff(table) > 0)
    n = 100_000
    draws = kernel.draw_noise_words(table, seed=7, count=n)
    observed = np.bincount(draws, minlength=len(counts))
    expected = noise_distribution(counts) * n
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert chi2 < 20.5, (observed, expected)             # 5 dof: p ~ 0.001


def test_dynamic_window_reductions_are_uniform():
    window, n = 5, 50_000
    draws = kernel.draw_window_reductions(window, seed=3, count=n)
    assert draws.min() == 0 and draws.max() == window - 1
    observed = np.bincount(draws, minlength=window)
    chi2 = float(np.sum((observed - n / window) ** 2 / (n / window)))
    assert chi2 < 18.5                                   # 4 dof: p ~ 0.001


# --- kernel == pair-by-pair replay of the references ---------------------------------------


def _sgd_step(w_in, w_out, input_rows, target, noise, alpha, architecture):
    """One prediction by the functional references, applied as gensim applies it."""
    noise = [k for k in noise if k != target]            # a noise word = target is skipped
    u_o, u_neg = w_out[[target]], w_out[noise][None]     # [1, D], [1, K', D]
    if architecture == kernel.SKIPGRAM:
        (row,) = input_rows
        loss, cache = sgns_forward(w_in[[row]], u_o, u_neg)
        dv, du_o, du_neg = sgns_backward(1.0, cache)
        w_in[row] -= alpha * dv[0]
    else:
        context = w_in[input_rows][None]                 # [1, C, D]
        loss, cache = cbow_forward(context, np.ones((1, len(input_rows)), bool), u_o, u_neg)
        dcontext, du_o, du_neg = cbow_backward(1.0, cache)
        # gensim/word2vec.c add the whole dL/dh to each context word: C times the 1/C share
        np.add.at(w_in, input_rows, -alpha * len(input_rows) * dcontext[0])
    w_out[target] -= alpha * du_o[0]
    w_out[noise] -= alpha * du_neg[0]
    return float(loss)


def _replay(architecture, w_in, w_out, words, window, reductions, noise, alpha):
    loss, p = 0.0, 0
    n = len(words)
    for i in range(n):
        reach = window - reductions[i]
        context = [j for j in range(max(0, i - reach), min(n, i + reach + 1)) if j != i]
        if architecture == kernel.SKIPGRAM:
            for j in context:
                loss += _sgd_step(w_in, w_out, [words[j]], words[i], noise[p], alpha,
                                  architecture)
                p += 1
        elif context:
            loss += _sgd_step(w_in, w_out, [words[j] for j in context], words[i], noise[p],
                              alpha, architecture)
            p += 1
    return loss, p


@pytest.mark.parametrize("architecture", [kernel.SKIPGRAM, kernel.CBOW], ids=["sg", "cbow"])
def test_kernel_equals_a_replay_of_the_references(architecture, rng):
    V, D, K, window, alpha = 12, 6, 3, 3, 0.3
    words = np.array([0, 3, 5, 3, 7, 1, 0, 9, 11, 2])   # repeats: rows updated twice
    reductions = rng.integers(0, window, size=len(words))
    made = kernel.predictions_of(architecture, len(words), window, reductions)
    # distinct noise rows per prediction; some equal the target (skipped by both)
    noise = np.array([rng.choice(V, size=K, replace=False) for _ in range(made)])
    noise[0, 0] = words[0]
    w_in, w_out = rng.standard_normal((V, D)) * 0.5, rng.standard_normal((V, D)) * 0.5
    ref_in, ref_out = w_in.copy(), w_out.copy()
    loss, count = kernel.replay_sentence(architecture, w_in, w_out, words, window, reductions,
                                         noise, alpha)
    ref_loss, ref_count = _replay(architecture, ref_in, ref_out, words, window, reductions,
                                  noise, alpha)
    assert count == ref_count == made
    np.testing.assert_allclose(w_in, ref_in, rtol=0, atol=1e-10)
    np.testing.assert_allclose(w_out, ref_out, rtol=0, atol=1e-10)
    assert loss == pytest.approx(ref_loss, rel=1e-10)


def test_sgns_is_a_sum_of_binary_log_losses_and_the_softmax_loss_is_finite(rng):
    v, U = rng.standard_normal((2, 4)), rng.standard_normal((5, 4))
    loss, _ = softmax_skipgram_forward(v, U, np.array([1, 3]))
    assert np.isfinite(loss)
    sg, _ = sgns_forward(v[:1], U[[1]], U[[0, 2]][None])
    scores = U @ v[0]
    by_hand = np.log1p(np.exp(-scores[1])) + np.log1p(np.exp(scores[[0, 2]])).sum()
    assert float(sg) == pytest.approx(by_hand, rel=1e-12)


def test_log_sigmoid_is_stable_for_large_scores():
    loss, cache = sgns_forward(np.array([[50.0]]), np.array([[-40.0]]), np.array([[[30.0]]]))
    assert np.isfinite(loss) and float(loss) == pytest.approx(2000.0 + 1500.0)
    assert all(np.all(np.isfinite(g)) for g in sgns_backward(1.0, cache))


# --- trainer -----------------------------------------------------------------------------


def _two_topics(sentences=400, length=8, seed=0):
    """Words 'a0'..'a9' only ever share a sentence with each other; likewise 'b0'..'b9'."""
    rng = np.random.default_rng(seed)
    lines = []
    for s in range(sentences):
        topic = "ab"[s % 2]
        lines.append(" ".join(f"{topic}{k}" for k in rng.integers(0, 10, size=length)))
    return corpus_from_text("\n".join(lines), min_count=1)


def _cosine(vectors):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_training_separates_two_topics(architecture):
    corpus = _two_topics()
    config = Word2VecConfig(architecture=architecture, vector_size=16, window=3, min_count=1,
                            negative=4, sample=0, epochs=10, workers=1, alpha=0.05)
    model = Word2Vec(config, corpus.words, corpus.counts)
    history = model.train(corpus)
    topic = np.array([w[0] == "a" for w in model.words])
    cos = _cosine(model.vectors)
    same = cos[topic][:, topic].mean() + cos[~topic][:, ~topic].mean()
    across = cos[topic][:, ~topic].mean()
    assert same / 2 - across > 0.5, (same / 2, across)
    assert history[-1]["loss"] < history[0]["loss"]
    assert [h["epoch"] for h in history] == list(range(1, 11))
    assert all(h["words_per_s"] > 0 and h["seconds"] > 0 for h in history)


def test_one_worker_is_deterministic_and_progress_is_reported():
    corpus = _two_topics(sentences=100)
    config = Word2VecConfig(vector_size=8, min_count=1, epochs=2, workers=1, seed=5)
    runs, progress = [], []
    for _ in range(2):
        model = Word2Vec(config, corpus.words, corpus.counts)
        model.train(corpus, on_progress=lambda *a: progress.append(a))
        runs.append(model.state_dict())
    for name in ("w_in", "w_out"):
        np.testing.assert_array_equal(runs[0][name], runs[1][name])
    done = [p[0] for p in progress[:len(progress) // 2]]
    assert done == sorted(done) and done[-1] == progress[0][1] == 2 * corpus.total_words
    other = Word2Vec(Word2VecConfig(vector_size=8, min_count=1, epochs=2, workers=1, seed=6),
                     corpus.words, corpus.counts)
    other.train(corpus)
    assert not np.array_equal(other.vectors, runs[0]["w_in"])


def test_initialisation_is_gensims():
    model = Word2Vec(Word2VecConfig(vector_size=10), ["a", "b", "c"], [3, 2, 1])
    assert model.vectors.dtype == np.float32 and model.vectors.shape == (3, 10)
    assert np.all(np.abs(model.vectors) <= 0.1) and not np.any(model.w_out)   # [-1/D, 1/D)
    assert np.abs(model.vectors).max() > 0.05                                # not word2vec.c's


def test_state_dict_round_trip_and_errors():
    model = Word2Vec(Word2VecConfig(vector_size=4, seed=2), ["a", "b"], [2, 1])
    other = Word2Vec(Word2VecConfig(vector_size=4, seed=3), ["a", "b"], [2, 1])
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other.vectors, model.vectors)
    with pytest.raises(ValueError, match=r"missing \['w_out'\]"):
        other.load_state_dict({"w_in": model.w_in})
    with pytest.raises(ValueError, match=r"w_in must be a \(2, 4\) float32"):
        other.load_state_dict({"w_in": np.zeros((2, 5), np.float32), "w_out": model.w_out})
    with pytest.raises(ValueError, match="float32"):
        other.load_state_dict({"w_in": model.w_in.astype(np.float64), "w_out": model.w_out})


@pytest.mark.parametrize("field, value", [
    ("architecture", "glove"), ("vector_size", 0), ("window", 0), ("negative", 0),
    ("sample", -1e-3), ("min_alpha", 0.0), ("min_alpha", 0.5), ("epochs", 0), ("workers", 0),
    ("min_count", 0)])
def test_config_range_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        Word2VecConfig(**{field: value})


def test_trainer_refuses_a_corpus_too_small_or_of_another_vocabulary():
    tiny = corpus_from_text("lonely", min_count=1)
    model = Word2Vec(Word2VecConfig(min_count=1), tiny.words, tiny.counts)
    with pytest.raises(ValueError, match="at least 2"):
        model.train(tiny)
    corpus = _two_topics(sentences=10)
    with pytest.raises(ValueError, match="vocabulary differs"):
        model.train(corpus)
    with pytest.raises(ValueError, match="non-empty vocabulary"):
        Word2Vec(Word2VecConfig(), [], [])
    assert isinstance(corpus, Corpus)


def test_softmax_skipgram_backward_matches_torch(rng, torch):
    """The full-softmax baseline's gradients, dv_c = (p - y) U / B and dU = (p - y)^T v_c / B,
    against autograd on the same float64 inputs."""
    v, U, targets = rng.standard_normal((3, 4)), rng.standard_normal((6, 4)), np.array([1, 5, 1])
    loss, cache = softmax_skipgram_forward(v, U, targets)
    dv, dU = softmax_skipgram_backward(1.0, cache)
    tv, tU = (torch.tensor(a, requires_grad=True) for a in (v, U))
    expected = torch.nn.functional.cross_entropy(tv @ tU.T, torch.tensor(targets))
    expected.backward()
    assert float(loss) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(dv, tv.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dU, tU.grad.numpy(), rtol=1e-12, atol=1e-14)
