"""tinylm.models.ngram: counting, add-k and interpolated Kneser-Ney, checked by hand, against
a brute-force reference written straight from Chen & Goodman's recursion, and on real text."""

import math
import time
from collections import Counter, defaultdict

import numpy
import pytest

from tinylm.data import CharTokenizer, load_text, split_train_val
from tinylm.models.ngram import NGramConfig, NGramLM, choose_ngram

# "a b c b a a b" as ids, V = 3. Hand counts: bigrams ab x2, bc, cb, ba, aa; unigrams a3 b3 c1;
# continuation counts N1+(. w): a <- {b, a} = 2, b <- {a, c} = 2, c <- {b} = 1.
TOY = numpy.array([0, 1, 2, 1, 0, 0, 1])


def fitted(ids=TOY, vocab_size=3, **config):
    return NGramLM(NGramConfig(vocab_size, **config)).fit(ids)


def next_token_probs(model, context):
    """P(. | context), the context given as a list of ids (its last position is scored)."""
    return model.probabilities(numpy.array([context]))[0, -1]


def test_continuation_counts_by_hand():
    model = fitted(order=2)
    assert model.levels[0].counts.tolist() == [3, 3, 1]
    assert model.levels[0].continuation.tolist() == [2, 2, 1]
    assert model.num_ngrams() == [3, 5]


def test_kneser_ney_bigram_by_hand():
    # D = 1/2. Lower order: P1(w) = (max(N1+(.w) - D, 0) + D * 3 * 1/3) / 5 = (.4, .4, .2).
    # Context a: c(a .) = (1, 2, 0), c(a) = 3, N1+(a .) = 2, lambda = D * 2 / 3 = 1/3:
    #   P(a|a) = .5/3 + .4/3 = .3,  P(b|a) = 1.5/3 + .4/3 = 19/30,  P(c|a) = .2/3 = 1/15.
    # Context c: c(c b) = 1, lambda = .5:  P(. | c) = (.2, .5 + .2, .1).
    model = fitted(order=2, discount=0.5)
    numpy.testing.assert_allclose(next_token_probs(model, [0]), [0.3, 19 / 30, 1 / 15], rtol=1e-14)
    numpy.testing.assert_allclose(next_token_probs(model, [2]), [0.2, 0.7, 0.1], rtol=1e-14)
    # order 1 uses the raw unigram counts (3, 3, 1) / 7 with the same discounting to 1/V
    numpy.testing.assert_allclose(next_token_probs(fitted(order=1, discount=0.5), [2]),
                                  [3 / 7, 3 / 7, 1 / 7], rtol=1e-14)


def test_add_k_by_hand():
    model = fitted(order=2, smoothing="add_k", k=1.0)
    numpy.testing.assert_allclose(next_token_probs(model, [0]), [2 / 6, 3 / 6, 1 / 6], rtol=1e-14)
    numpy.testing.assert_allclose(next_token_probs(model, [2]), [1 / 4, 2 / 4, 1 / 4], rtol=1e-14)


def test_order_one_add_zero_is_the_unigram_frequency():
    ids = numpy.random.default_rng(0).integers(0, 7, size=500)
    model = fitted(ids, 8, order=1, smoothing="add_k", k=0.0)
    expected = numpy.bincount(ids, minlength=8) / ids.size
    numpy.testing.assert_allclose(next_token_probs(model, [3]), expected, rtol=1e-14)


def test_maximum_likelihood_gives_unseen_ngrams_infinite_loss():
    model = fitted(order=2, smoothing="add_k", k=0.0)
    _, loss = model.forward(numpy.array([[2]]), numpy.array([[2]]))     # "c c" never occurs
    assert loss == math.inf
    _, smoothed = fitted(order=2).forward(numpy.array([[2]]), numpy.array([[2]]))
    assert math.isfinite(float(smoothed))


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_every_distribution_sums_to_one(order, smoothing):
    rng = numpy.random.default_rng(order)
    train = rng.integers(0, 6, size=300)                      # ids 6..8 never seen
    model = fitted(train, 9, order=order, smoothing=smoothing, k=0.3, discount=0.8)
    idx = rng.integers(0, 9, size=(4, 12))
    probs = model.probabilities(idx)
    assert probs.shape == (4, 12, 9) and (probs > 0).all()
    numpy.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=0, atol=1e-13)


def brute_force_kneser_ney(train, V, order, D):
    """Chen & Goodman's interpolated KN, one probability at a time, with dictionaries."""
    counts = Counter(tuple(train[s:s + n]) for n in range(1, order + 1)
                     for s in range(len(train) - n + 1))
    left = defaultdict(set)
    for gram in counts:
        if len(gram) > 1:
            left[gram[1:]].add(gram[0])

    def prob(w, h, highest):
        if h is None:
            return 1.0 / V
        c = (lambda g: counts.get(g, 0)) if highest else (lambda g: len(left.get(g, ())))
        row = [c(h + (v,)) for v in range(V)]
        lower = prob(w, h[1:] if h else None, False)
        if sum(row) == 0:
            return lower
        return (max(row[w] - D, 0) + D * sum(r > 0 for r in row) * lower) / sum(row)
    return prob


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_matches_the_brute_force_recursion(order):
    rng = numpy.random.default_rng(10 + order)
    V = 5
    train = (rng.random(400) ** 2 * V).astype(int)             # skewed, so counts differ
    test = rng.integers(0, V, size=15)
    model = fitted(train, V, order=order, discount=0.7)
    probs = model.probabilities(test[None])[0]
    prob = brute_force_kneser_ney(train.tolist(), V, order, 0.7)
    for t in range(len(test)):
        h = tuple(test[max(0, t - order + 2):t + 1].tolist())   # all the window offers
        expected = [prob(w, h, True) for w in range(V)]
        numpy.testing.assert_allclose(probs[t], expected, rtol=1e-12)


def test_forward_returns_log_probs_and_the_mean_nll():
    rng = numpy.random.default_rng(3)
    model = fitted(rng.integers(0, 4, 200), 4, order=3)
    idx, targets = rng.integers(0, 4, (2, 6)), rng.integers(0, 4, (2, 6))
    logits, loss = model.forward(idx, targets)
    assert logits.shape == (2, 6, 4) and logits.dtype == numpy.float64
    picked = numpy.take_along_axis(logits, targets[..., None], -1)
    assert float(loss) == pytest.approx(-picked.mean(), rel=1e-14)
    # position t conditions on the window only: a window of one token equals position 0
    numpy.testing.assert_allclose(model.forward(idx[:, :1])[0][:, 0], logits[:, 0])


def test_stream_loss_equals_one_long_window():
    rng = numpy.random.default_rng(4)
    model = fitted(rng.integers(0, 5, 300), 5, order=4)
    stream = rng.integers(0, 5, 101)
    _, loss = model.forward(stream[None, :-1], stream[None, 1:])
    assert model.stream_loss(stream, chunk_size=7) == pytest.approx(float(loss), rel=1e-12)


def test_with_config_shares_counts():
    rng = numpy.random.default_rng(5)
    train, idx = rng.integers(0, 6, 500), rng.integers(0, 6, (2, 9))
    big = fitted(train, 6, order=4)
    small = big.with_config(order=2, smoothing="add_k", k=0.5)
    direct = fitted(train, 6, order=2, smoothing="add_k", k=0.5)
    numpy.testing.assert_allclose(small.probabilities(idx), direct.probabilities(idx), rtol=1e-14)
    with pytest.raises(ValueError, match="refit"):
        small.with_config(order=3)


def test_state_dict_round_trips_through_npz(tmp_path):
    rng = numpy.random.default_rng(6)
    model = fitted(rng.integers(0, 7, 400), 7, order=3)
    numpy.savez(tmp_path / "counts.npz", **model.state_dict())
    with numpy.load(tmp_path / "counts.npz", allow_pickle=False) as archive:
        state = dict(archive)
    loaded = NGramLM.from_config(model.config_dict())
    loaded.load_state_dict(state)
    idx = rng.integers(0, 7, (3, 8))
    numpy.testing.assert_array_equal(loaded.forward(idx)[0], model.forward(idx)[0])
    with pytest.raises(KeyError, match="order3"):
        NGramLM(NGramConfig(7, order=2)).load_state_dict(state)


def test_generation_through_the_decoding_interface():
    from tinylm.generate import generate
    model = fitted(numpy.array([0, 1, 2] * 50), 3, order=3)
    out = generate(model, numpy.array([[0, 1]]), 9, numpy.random.default_rng(0), greedy=True)
    assert out[0].tolist() == [2, 0, 1] * 3


def test_errors_name_the_problem():
    with pytest.raises(NotImplementedError, match="count-based"):
        fitted(order=2).backward()
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(NGramConfig(3, order=2)).forward(numpy.zeros((1, 2), int))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        fitted(order=2).forward(numpy.array([[0, 3]]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        NGramLM(NGramConfig(2, order=2)).fit(TOY)
    with pytest.raises(ValueError, match="empty"):
        NGramLM(NGramConfig(3, order=2)).fit(numpy.array([], dtype=int))
    with pytest.raises(ValueError, match="smoothing"):
        NGramLM(NGramConfig(3, smoothing="good_turing"))
    with pytest.raises(ValueError, match="discount"):
        NGramLM(NGramConfig(3, discount=1.5))


def test_fit_is_fast_on_a_million_tokens():
    ids = (numpy.random.default_rng(7).random(1_000_000) ** 3 * 65).astype(numpy.int64)
    start = time.perf_counter()
    model = fitted(ids, 65, order=5)
    assert time.perf_counter() - start < 20.0
    assert model.levels[0].counts.sum() == ids.size


def test_tiny_shakespeare_kneser_ney():
    try:
        text = load_text("tinyshakespeare", download_missing=False)
    except FileNotFoundError as error:
        pytest.skip(f"Tiny Shakespeare is not available offline: {error}")
    from tinylm.evaluate import evaluate_lm
    tok = CharTokenizer.from_text(text)
    train, val = split_train_val(tok.encode(text), 0.1)
    model = fitted(train, tok.vocab_size, order=3)
    loss = model.stream_loss(val)
    assert loss < 2.6                                        # measured: 2.041 nats/char
    windows = evaluate_lm(model, val[:20000], batch_size=8, block_size=256)
    assert windows["loss"] == pytest.approx(model.stream_loss(val[:20000]), abs=0.02)
    best, rows = choose_ngram(train[:100000], val[:5000], tok.vocab_size, orders=(1, 2, 3),
                              settings=[{"smoothing": "kneser_ney"}, {"smoothing": "add_k"}])
    assert len(rows) == 6 and min(r["loss"] for r in rows) == best.stream_loss(val[:5000])

