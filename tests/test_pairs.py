"""Sentence pairs: the toy tasks and translation files parse as documented, the split never
shares a sentence between two parts, and padded batches shift the target by one."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.data.pairs import IGNORE_INDEX, load_pairs, pad_pairs, split_pairs


def test_toy_tasks_lose_their_padding():
    addition = load_pairs("addition")
    assert len(addition) == 50000 and addition[:2] == [("16+75", "91"), ("52+607", "659")]
    date = load_pairs("date")
    assert date[0] == ("september 27, 1994", "1994-09-27")


def test_translation_directions():
    fra = load_pairs("fra-eng")
    assert len(fra) == 167130 and fra[0] == ("Go.", "Va !")
    cmn = load_pairs("cmn-eng")
    assert cmn[0] == ("嗨。", "Hi.")                      # Chinese -> English
    assert load_pairs("cmn-eng", reverse=True)[0] == ("Hi.", "嗨。")


def test_no_sentence_is_shared_between_splits_and_the_fractions_hold():
    pairs = load_pairs("fra-eng")
    train, valid, test = split_pairs(pairs, valid_fraction=0.02, test_fraction=0.03)
    assert len(train) + len(valid) + len(test) == len(pairs)
    for side in (0, 1):
        seen = [{p[side] for p in part} for part in (train, valid, test)]
        assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert abs(len(test) / len(pairs) - 0.03) < 0.003 and len(test) >= 2000
    assert abs(len(valid) / len(pairs) - 0.02) < 0.003
    again = split_pairs(list(reversed(pairs)), valid_fraction=0.02, test_fraction=0.03)
    assert sorted(again[2]) == sorted(test)                 # fixed by the data, not the order


def test_pad_pairs_shifts_the_target_and_masks_the_padding():
    batch = pad_pairs([[5, 6, 7], [8]], [[9], [10, 11]], pad_id=0, bos_id=1, eos_id=2)
    np.testing.assert_array_equal(batch.src, [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(batch.src_mask, [[True] * 3, [True, False, False]])
    np.testing.assert_array_equal(batch.tgt_in, [[1, 9, 0], [1, 10, 11]])
    np.testing.assert_array_equal(batch.tgt_out, [[9, 2, IGNORE_INDEX], [10, 11, 2]])


@pytest.mark.parametrize("call, match", [
    (lambda: load_pairs("tinyshakespeare"), "not a sentence-pair data set"),
    (lambda: split_pairs([("a", "b")] * 3, test_fraction=0.0), "fractions"),
    (lambda: pad_pairs([[1]], [[1], [2]], 0, 1, 2), "as many sources as targets"),
    (lambda: pad_pairs([[]], [[1]], 0, 1, 2), "source 0 of the batch is empty"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_source_only_split_keeps_equal_questions_together_but_not_equal_answers():
    pairs = [(f"{a}+{b}", str(a + b)) for a in range(30) for b in range(30)]
    pairs += pairs[:50]                                         # repeated questions
    train, valid, test = split_pairs(pairs, 0.1, 0.1, connect_targets=False)
    questions = [{q for q, _ in part} for part in (train, valid, test)]
    assert not (questions[0] & questions[2]) and not (questions[0] & questions[1])
    answers = [{a for _, a in part} for part in (train, test)]
    assert answers[0] & answers[1]                              # "20" is in both
    assert 0.05 < len(test) / len(pairs) < 0.15
    joined = split_pairs(pairs, 0.1, 0.1)                       # targets connect: one blob
    assert {a for _, a in joined[0]}.isdisjoint({a for _, a in joined[2]})
