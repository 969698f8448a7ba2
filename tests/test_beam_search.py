"""Beam search (tinylm/beam_search.py) against brute force, greedy decoding and hand-worked cases.

The toy "models" are tables: log p(y_t | y_<t, x_b) = table[b, t, y_{t-1}] (the source row b,
the position t and the previous token), or a function of the whole prefix (to check that
reorder keeps each hypothesis' own state). Token 0 is eos; bos is the id V, fed but never
produced.
"""

from __future__ import annotations

import itertools

import numpy
import pytest

from tinylm.beam_search import (BeamResult, beam_search, greedy_decode, hypothesis_score,
                                language_model_step, length_penalty_of, reorder_rows)
from tinylm.generate import generate

EOS = 0
PENALTIES = [None, "average", "gnmt"]


def random_table(rng, batch_size, max_len, V, spread=2.0):
    """Log-probs [B, max_len, V + 1, V]: position t, previous token (V = bos) -> next token."""
    logits = rng.normal(0.0, spread, size=(batch_size, max_len, V + 1, V))
    return logits - numpy.log(numpy.exp(logits).sum(axis=-1, keepdims=True))


class TableDecoder:
    """A fake decoder whose state is a dict: the batch row and the position of each
    hypothesis, [N] each. Records every token it is fed."""

    def __init__(self, table):
        self.table = table                                              # [B, L, V + 1, V]
        self.fed = []

    def start(self):
        return {"row": numpy.arange(self.table.shape[0]),
                "position": numpy.zeros(self.table.shape[0], dtype=int)}

    def step(self, tokens, state):
        self.fed.append(tokens.copy())
        rows, positions = state["row"], state["position"]
        log_probs = self.table[rows, positions, tokens]                    # [N, V]
        return log_probs, {"row": rows, "position": positions + 1}


def decode(table, method, **options):
    decoder = TableDecoder(table)
    V = table.shape[-1]
    if method == "greedy":
        return greedy_decode(decoder.step, decoder.start(), table.shape[0], V, EOS, **options)
    return beam_search(decoder.step, decoder.start(), table.shape[0], V, EOS, **options)


def every_output(V, max_len):
    """Each y the search may return: non-eos tokens then eos (|y| <= max_len), or max_len
    non-eos tokens (unfinished)."""
    for length in range(1, max_len + 1):
        for body in itertools.product(range(1, V), repeat=length - 1):
            yield body + (EOS,)
    yield from itertools.product(range(1, V), repeat=max_len)


def table_log_prob(table, row, y):
    previous = [table.shape[2] - 1] + list(y[:-1])
    return sum(table[row, t, previous[t], y[t]] for t in range(len(y)))


# -- the scores -----------------------------------------------------------------------------
def test_length_penalties_follow_their_formulas():
    assert length_penalty_of(7, None) == 1.0
    assert length_penalty_of(7, "average") == 7.0
    assert length_penalty_of(7, "gnmt", alpha=0.6) == pytest.approx((12 / 6) ** 0.6)
    assert length_penalty_of(1, "gnmt", alpha=0.6) == pytest.approx(1.0)   # lp(1) = 1
    assert hypothesis_score(-3.0, 3, "average") == pytest.approx(-1.0)


# -- beam 1 is greedy -----------------------------------------------------------------------
@pytest.mark.parametrize("length_penalty", PENALTIES)
def test_beam_width_one_is_greedy_decoding(length_penalty):
    rng = numpy.random.default_rng(0)
    for trial in range(40):
        V, max_len, batch = int(rng.integers(2, 7)), int(rng.integers(1, 8)), 3
        table = random_table(rng, batch, max_len, V)
        options = dict(max_len=max_len, length_penalty=length_penalty)
        greedy = decode(table, "greedy", **options)
        beam = decode(table, "beam", beam_width=1, **options)
        for g, b in zip(greedy, beam):
            assert g.tokens == b.tokens, f"trial {trial}"
            assert g.finished == b.finished
            assert b.log_prob == pytest.approx(g.log_prob, abs=1e-12)
            assert b.score == pytest.approx(g.score, abs=1e-12)


# -- a wide beam is exhaustive ------------------------------------------------------------------
@pytest.mark.parametrize("length_penalty", PENALTIES)
@pytest.mark.parametrize("seed", range(6))
def test_a_wide_beam_finds_the_best_of_every_output(length_penalty, seed):
    V, max_len = 4, 4
    table = random_table(numpy.random.default_rng(seed), 2, max_len, V, spread=1.0)
    results = decode(table, "beam", beam_width=V ** max_len, max_len=max_len,
                     length_penalty=length_penalty)
    for row, result in enumerate(results):
        scored = [(hypothesis_score(table_log_prob(table, row, y), len(y), length_penalty), y)
                  for y in every_output(V, max_len)]
        best_score, best_y = max(scored)
        assert result.tokens == best_y
        assert result.score == pytest.approx(best_score, abs=1e-12)
        assert result.log_prob == pytest.approx(table_log_prob(table, row, best_y), abs=1e-12)
        assert result.finished == (best_y[-1] == EOS)


def test_wider_beams_never_score_worse_here_and_the_widest_is_optimal():
    """Not a theorem for every model (a wider beam can end worse), but a wide enough beam
    is exhaustive: the score of width V^max_len bounds every other width's."""
    table = random_table(numpy.random.default_rng(7), 4, 4, 4)
    widest = decode(table, "beam", beam_width=256, max_len=4)
    for width in (1, 2, 3, 5, 16):
        for narrow, best in zip(decode(table, "beam", beam_width=width, max_len=4), widest):
            assert narrow.score <= best.score + 1e-12


# -- a worked example: greedy is wrong, beam 2 is right ---------------------------------------
A, B, C, D, E, F = 1, 2, 3, 4, 5, 6


def worked_example_table():
    """Step 1: A 0.6, B 0.4. After A the mass is spread (C 0.3, D 0.25, E 0.25, F 0.2); after
    B, D has 0.9 (C 0.05, E 0.05). After C, D, E, F: eos with probability 1. Greedy gives
    A C eos, P = 0.6 * 0.3 = 0.18; beam 2 keeps B and finds B D eos, P = 0.4 * 0.9 = 0.36."""
    V, bos = 7, 7
    probs = numpy.zeros((3, V + 1, V))
    probs[0, bos, [A, B]] = [0.6, 0.4]
    probs[1, A, [C, D, E, F]] = [0.3, 0.25, 0.25, 0.2]
    probs[1, B, [C, D, E]] = [0.05, 0.9, 0.05]
    probs[2, [C, D, E, F], EOS] = 1.0
    probs[:, :, EOS] += (probs.sum(axis=-1) == 0)       # unreachable contexts: anything valid
    with numpy.errstate(divide="ignore"):
        return numpy.log(probs)[None]                   # [1, 3, V + 1, V]; log 0 = -inf


@pytest.mark.parametrize("length_penalty", PENALTIES)
def test_greedy_is_wrong_and_beam_two_is_right_on_the_worked_example(length_penalty):
    table = worked_example_table()
    options = dict(max_len=3, length_penalty=length_penalty)
    greedy, = decode(table, "greedy", **options)
    assert greedy.tokens == (A, C, EOS)
    assert greedy.log_prob == pytest.approx(numpy.log(0.18))
    beam_one, = decode(table, "beam", beam_width=1, **options)
    assert beam_one.tokens == (A, C, EOS)
    beam, = decode(table, "beam", beam_width=2, **options)
    assert beam.tokens == (B, D, EOS)
    assert beam.finished
    assert beam.log_prob == pytest.approx(numpy.log(0.36))
    assert beam.score == pytest.approx(numpy.log(0.36) / length_penalty_of(3, length_penalty))


# -- batching -------------------------------------------------------------------------------
@pytest.mark.parametrize("length_penalty", PENALTIES)
@pytest.mark.parametrize("beam_width", [1, 2, 3, 8])
def test_a_batch_gives_what_each_row_gives_alone(length_penalty, beam_width):
    rng = numpy.random.default_rng(beam_width)
    table = random_table(rng, 5, 6, 5)
    options = dict(beam_width=beam_width, max_len=6, length_penalty=length_penalty)
    together = decode(table, "beam", **options)
    for row in range(5):
        alone, = decode(table[row:row + 1], "beam", **options)
        assert together[row] == alone


def test_greedy_batch_gives_what_each_row_gives_alone():
    table = random_table(numpy.random.default_rng(3), 4, 5, 3)
    together = decode(table, "greedy", max_len=5)
    for row in range(4):
        assert together[row] == decode(table[row:row + 1], "greedy", max_len=5)[0]


# -- eos and max_len -----------------------------------------------------------------------
def eos_at_step_two_table():
    """A certain at step 1, then eos 0.8 / B 0.2, then B again (0.5) or eos (0.5)."""
    V = 3
    probs = numpy.full((1, 3, V + 1, V), 1.0 / V)
    probs[0, 0, V] = [0.0, 1.0, 0.0]
    probs[0, 1, A] = [0.8, 0.0, 0.2]
    probs[0, 2, B] = [0.5, 0.0, 0.5]
    with numpy.errstate(divide="ignore"):
        return numpy.log(probs)


def test_a_hypothesis_stops_at_eos_and_its_length_counts_eos():
    """|y| counts eos: (A, eos) has length 2, so its 'average' score is log 0.8 / 2."""
    table = eos_at_step_two_table()
    decoder = TableDecoder(table)
    result, = beam_search(decoder.step, decoder.start(), 1, 3, EOS, beam_width=2, max_len=3,
                          length_penalty="average")
    assert result == BeamResult((A, EOS), numpy.log(0.8) / 2, numpy.log(0.8), True)
    assert all(EOS not in fed for fed in decoder.fed), "a finished hypothesis was fed again"


def test_unfinished_hypotheses_compete_at_max_len():
    """max_len=2: (A, eos) scores log 0.8 / 2 under 'average', the unfinished (A, B) log 0.2 / 2;
    with eos made impossible the unfinished one is all there is."""
    table = eos_at_step_two_table()
    best, = decode(table, "beam", beam_width=2, max_len=2, length_penalty="average")
    assert best.tokens == (A, EOS)
    table[0, 1, A] = numpy.log([1e-300, 1e-300, 1.0])
    table[0, 1, A, EOS] = -numpy.inf
    best, = decode(table, "beam", beam_width=2, max_len=2, length_penalty="average")
    assert best == BeamResult((A, B), 0.0, 0.0, False)


def test_the_search_stops_once_no_live_hypothesis_can_win():
    """eos is almost certain at once: log P(eos) ~ 0 beats every live prefix's bound
    log P / lp(max_len), so one step is all the search takes, whatever max_len."""
    V = 4
    logits = numpy.zeros((1, 50, V + 1, V))
    logits[..., EOS] = 20.0
    table = logits - numpy.log(numpy.exp(logits).sum(axis=-1, keepdims=True))
    for length_penalty in PENALTIES:
        decoder = TableDecoder(table)
        result, = beam_search(decoder.step, decoder.start(), 1, V, EOS, beam_width=3,
                              max_len=50, length_penalty=length_penalty)
        assert result.tokens == (EOS,)
        assert len(decoder.fed) == 1, length_penalty


# -- the state: reorder ---------------------------------------------------------------------
def prefix_log_probs(prefix, V, seed=0):
    """A 'model' whose next-token distribution depends on the whole prefix: [V]."""
    rng = numpy.random.default_rng([seed, len(prefix)] + list(prefix))
    logits = rng.normal(0.0, 2.0, size=V)
    return logits - numpy.log(numpy.exp(logits).sum())


class HistoryDecoder:
    """A fake decoder whose state carries each hypothesis' own history: the last token and a
    counter (how many tokens it was fed), in a dict, a tuple, or an object with its own
    ``select``. Reordering the state wrongly feeds a hypothesis another one's history, which
    the step checks (the counter) and which changes the log-probs (the history)."""

    def __init__(self, V, batch_size, kind):
        self.V, self.kind = V, kind
        self.histories = [()] * batch_size

    def start(self):
        B = len(self.histories)
        return self._pack(numpy.full(B, -1), numpy.zeros(B, dtype=int), numpy.arange(B))

    def _pack(self, last, counter, ids):
        if self.kind == "dict":
            return {"last": last, "counter": counter, "nested": {"ids": (ids,)}}
        if self.kind == "tuple":
            return (last, [counter, ids])
        return Rows(last, counter, ids)

    def _unpack(self, state):
        if self.kind == "dict":
            return state["last"], state["counter"], state["nested"]["ids"][0]
        if self.kind == "tuple":
            return state[0], state[1][0], state[1][1]
        return state.last, state.counter, state.ids

    def step(self, tokens, state):
        last, counter, ids = self._unpack(state)
        histories = [self.histories[i] for i in ids]                 # each row's history
        assert all(len(h) == c for h, c in zip(histories, counter))
        assert all(c == 0 or h[-1] == l for h, c, l in zip(histories, counter, last))
        new = [h + (int(t),) for h, t in zip(histories, tokens)]
        self.histories = new
        log_probs = numpy.stack([prefix_log_probs(h[1:], self.V) for h in new])  # [N, V]
        return log_probs, self._pack(tokens.copy(), counter + 1, numpy.arange(len(new)))


class Rows:
    """A state that is not a container of arrays: it reorders itself."""

    def __init__(self, last, counter, ids):
        self.last, self.counter, self.ids = last, counter, ids

    def select(self, indices):
        return Rows(self.last[indices], self.counter[indices], self.ids[indices])


def brute_force_best(V, max_len, length_penalty):
    def log_prob(y):
        return sum(prefix_log_probs(y[:t], V)[y[t]] for t in range(len(y)))
    return max(every_output(V, max_len),
               key=lambda y: hypothesis_score(log_prob(y), len(y), length_penalty))


@pytest.mark.parametrize("kind", ["dict", "tuple", "object"])
def test_reorder_keeps_each_hypothesis_its_own_state(kind):
    V, max_len = 3, 4
    decoder = HistoryDecoder(V, 2, kind)
    reorder = (lambda state, indices: state.select(indices)) if kind == "object" else None
    results = beam_search(decoder.step, decoder.start(), 2, V, EOS, beam_width=V ** max_len,
                          max_len=max_len, length_penalty="gnmt", reorder=reorder)
    best = brute_force_best(V, max_len, "gnmt")
    assert [r.tokens for r in results] == [best, best]      # both rows share the same model


def test_reorder_rows_selects_the_leading_axis_through_containers():
    state = {"h": numpy.arange(6).reshape(3, 2), "pair": (numpy.arange(3), [numpy.arange(3) * 10]),
             "nothing": None}
    picked = reorder_rows(state, numpy.array([2, 2, 0]))
    assert picked["h"].tolist() == [[4, 5], [4, 5], [0, 1]]
    assert picked["pair"][0].tolist() == [2, 2, 0]
    assert isinstance(picked["pair"][1], list) and picked["pair"][1][0].tolist() == [20, 20, 0]
    assert picked["nothing"] is None
    with pytest.raises(TypeError, match="reorder="):
        reorder_rows(object(), numpy.array([0]))


def test_a_kv_cache_selects_its_rows():
    from tinylm.nn.attention import KVCache
    cache = KVCache(3, 2, 4, 5, numpy, numpy.float64)
    cache.append(*(numpy.arange(3 * 2 * 2 * 5, dtype=float).reshape(3, 2, 2, 5),) * 2)
    picked = reorder_rows({"caches": [cache]}, numpy.array([2, 0, 0]))["caches"][0]
    assert picked.length == 2 and picked.k.shape == (3, 2, 4, 5)
    numpy.testing.assert_array_equal(picked.k[:, :, :2], cache.k[[2, 0, 0], :, :2])
    picked.append(numpy.ones((3, 2, 1, 5)), numpy.ones((3, 2, 1, 5)))
    assert cache.length == 2                                 # the original is left alone


# -- a tinylm language model ------------------------------------------------------------------
@pytest.mark.parametrize("family, use_cache", [("mlp", True), ("lstm", True), ("gru", True),
                                               ("gpt", True), ("gpt", False)])
def test_a_language_model_decodes_through_language_model_step(family, use_cache):
    """Beam 1 is generate's greedy decoding; a wide beam scores at least as well here."""
    from tests.model_helpers import small_model
    model = small_model(family)
    model.eval()
    prompt = numpy.array([[1, 2, 3], [4, 5, 6]])
    expected = generate(model, prompt, 5, numpy.random.default_rng(0), greedy=True,
                        stop_ids=[EOS])
    for width in (1, 4):
        step, start_state, reorder = language_model_step(model, prompt, use_cache)
        results = beam_search(step, start_state, 2, 0, EOS, beam_width=width, max_len=5,
                              length_penalty=None, reorder=reorder)
        if width == 1:
            beam_one = results
            for row, result in enumerate(results):
                tokens = list(expected[row])
                assert list(result.tokens) == tokens[:tokens.index(EOS) + 1 if EOS in tokens
                                                     else None]
        else:
            assert all(w.score >= b.score - 1e-9 for w, b in zip(results, beam_one))


def test_gpt_beam_search_through_the_kv_cache_equals_recomputing():
    """KVCache.select_rows lets the beam keep, drop and duplicate cached hypotheses."""
    from tests.model_helpers import small_model
    model = small_model("gpt").to(numpy.float64)
    model.eval()
    prompt = numpy.array([[1, 2, 3], [4, 5, 6]])
    for width in (1, 3):
        found = []
        for use_cache in (True, False):
            step, start_state, reorder = language_model_step(model, prompt, use_cache)
            found.append(beam_search(step, start_state, 2, 0, EOS, beam_width=width, max_len=5,
                                     length_penalty="gnmt", reorder=reorder))
        cached, recomputed = found
        assert [r.tokens for r in cached] == [r.tokens for r in recomputed]
        assert numpy.allclose([r.score for r in cached], [r.score for r in recomputed],
                              rtol=1e-12, atol=1e-12)


# -- errors -----------------------------------------------------------------------------------
def one_row_step(log_probs):
    return lambda tokens, state: (log_probs, state)


@pytest.mark.parametrize("setting, value, message", [
    ("beam_width", 0, "beam_width=0 must be an integer >= 1"),
    ("max_len", 0, "max_len=0 must be an integer >= 1"),
    ("length_penalty", "mean", "length_penalty='mean' must be one of"),
    ("alpha", -1.0, "alpha=-1.0 must be a finite number >= 0"),
])
def test_bad_settings_are_named(setting, value, message):
    step = one_row_step(numpy.log(numpy.full((1, 3), 1 / 3)))
    with pytest.raises(ValueError, match=message):
        beam_search(step, None, 1, 3, EOS, **{setting: value})


def test_greedy_checks_max_len():
    with pytest.raises(ValueError, match="max_len=0"):
        greedy_decode(one_row_step(numpy.zeros((1, 1))), None, 1, 1, EOS, max_len=0)


@pytest.mark.parametrize("log_probs, message", [
    (numpy.zeros((2, 3)), r"shape \(2, 3\), but it was given 1 tokens"),
    (numpy.zeros(3), r"shape \(3,\)"),
    (numpy.array([[numpy.nan, 0.0, -1.0]]), "row 0 hold NaN"),
    (numpy.array([[numpy.inf, 0.0, -1.0]]), "row 0 hold NaN or \\+inf"),
    (numpy.array([[2.0, 1.0, 0.5]]), "not log-probabilities"),
    (numpy.full((1, 3), -numpy.inf), "every token of row 0 has log-probability -inf"),
    (numpy.zeros((1, 0)), "eos_id=0 is not a token"),
])
@pytest.mark.parametrize("decoder", [beam_search, greedy_decode])
def test_bad_log_probs_are_named(decoder, log_probs, message):
    with pytest.raises(ValueError, match=message):
        decoder(one_row_step(log_probs), None, 1, 3, EOS, max_len=3)


def test_the_top_k_selection_is_a_stable_descending_sort_cut_at_k():
    """_top_in_order partitions instead of sorting all n * V candidates; with many ties
    and -inf entries it must pick exactly what the full stable sort picks."""
    from tinylm.beam_search import _top_in_order
    rng = numpy.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 60))
        values = rng.integers(0, 4, n).astype(float)
        values[rng.random(n) < 0.2] = -numpy.inf
        k = int(rng.integers(1, 70))
        numpy.testing.assert_array_equal(_top_in_order(values, k),
                                      numpy.argsort(-values, kind="stable")[:k])
