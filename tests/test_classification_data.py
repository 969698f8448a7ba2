"""tinylm.data.classification: parsing the labelled files, the task's checks, and the three
ways of splitting it (balanced, stratified, k-fold). Small tasks are made here; the checks
on the real files skip when the data is not available offline."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.data.classification import (Split, TextClassificationTask, balanced_split,
                                        file_lines, kfold, load_task, parse_labelled_lines,
                                        parse_sentences, stratified_holdout, stratified_split)


def _task(counts=(100, 20), name="toy"):
    """A task with counts[c] examples of class c (texts "c<class> <i>"), classes interleaved."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    labels = labels[np.random.default_rng(0).permutation(len(labels))]
    texts = [f"c{c} text {i}" for i, c in enumerate(labels)]
    names = tuple(f"class{c}" for c in range(len(counts)))
    return TextClassificationTask(name, texts, labels.astype(np.int64), names)


def _real_task(name):
    try:
        return load_task(name, download_missing=False)
    except FileNotFoundError as error:
        pytest.skip(f"task {name!r} is not available offline: {error}")


# -- reading ---------------------------------------------------------------------------------
def test_labelled_lines_keep_every_line_and_its_quotes():
    text = ('ham\tOk lar... Joking wif u oni...\n'
            'spam\t"FREE entry to win a prize\n'           # an unmatched quote: not quoting
            'ham\tHe said "hi" \t and left\n'              # a tab inside the text stays
            'ham\t"\n')
    texts, labels = parse_labelled_lines(text, "toy.tsv", ("ham", "spam"))
    assert texts == ["Ok lar... Joking wif u oni...", '"FREE entry to win a prize',
                     'He said "hi" \t and left', '"']
    np.testing.assert_array_equal(labels, [0, 1, 0, 0])
    assert labels.dtype == np.int64


@pytest.mark.parametrize("line, problem", [("spam no tab", "expected 'label<TAB>text'"),
                                           ("junk\ttext", "expected 'label<TAB>text'"),
                                           ("spam\t   ", "the spam message is empty")])
def test_a_bad_labelled_line_is_named(line, problem):
    with pytest.raises(ValueError, match=rf"toy.tsv, line 2: {problem}"):
        parse_labelled_lines(f"ham\tfine\n{line}\nham\tfine\n", "toy.tsv", ("ham", "spam"))


def test_sentences_split_on_newline_only():
    # latin-1 byte 0x85 decodes to U+0085 (NEL), which str.splitlines treats as a break
    text = b"caf\xe9 is fine \x85 really\nsecond line \n".decode("latin-1")
    assert parse_sentences(text, "toy.pos") == ["café is fine \x85 really", "second line "]
    assert len(text.splitlines()) == 3
    with pytest.raises(ValueError, match=r"toy.pos, line 2: empty line"):
        parse_sentences("one\n \nthree\n", "toy.pos")


def test_file_lines_treats_a_final_newline_as_the_end_of_the_last_line():
    assert file_lines("a\nb\n") == ["a", "b"]
    assert file_lines("a\nb") == ["a", "b"]


def test_the_task_refuses_bad_examples():
    with pytest.raises(ValueError, match="text 1 is empty"):
        TextClassificationTask("t", ["ok", "  "], np.array([0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="3 texts but labels of shape"):
        TextClassificationTask("t", ["a", "b", "c"], np.array([0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match=r"integers in \[0, 2\)"):
        TextClassificationTask("t", ["a", "b"], np.array([0, 2]), ("a", "b"))
    with pytest.raises(ValueError, match="two or more distinct"):
        TextClassificationTask("t", ["a", "b"], np.array([0, 0]), ("a", "a"))


def test_an_unknown_task_lists_the_known_ones():
    with pytest.raises(KeyError, match="sms-spam, polarity"):
        load_task("imdb")


# -- balanced split --------------------------------------------------------------------------
def test_balanced_split_follows_the_llms_from_scratch_recipe():
    task = _task((100, 21))
    split = balanced_split(task, seed=5)
    n = 42                                                  # 21 of each class
    assert [len(p) for p in split] == [int(0.7 * n), int(0.1 * n), n - 29 - 4]
    everything = np.concatenate(split)
    assert len(np.unique(everything)) == n                  # disjoint parts
    counts = np.bincount(task.labels[everything])
    np.testing.assert_array_equal(counts, [21, 21])
    assert set(np.flatnonzero(task.labels == 1)) <= set(everything)   # every minority example
    again = balanced_split(task, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(split, again))
    other = balanced_split(task, seed=6)
    assert not np.array_equal(split.train, other.train)


def test_balanced_split_refuses_bad_fractions_and_empty_classes():
    with pytest.raises(ValueError, match="summing to 1"):
        balanced_split(_task(), fractions=(0.7, 0.2, 0.2))
    with pytest.raises(ValueError, match="holds no"):
        balanced_split(_task((30, 2)), seed=0)              # 4 examples: val gets none


# -- stratified split ------------------------------------------------------------------------
def test_stratified_split_keeps_the_class_proportions():
    task = _task((200, 40, 60))
    split = stratified_split(task, test_fraction=0.2, val_fraction=0.1, seed=3)
    assert isinstance(split, Split)
    everything = np.sort(np.concatenate(split))
    np.testing.assert_array_equal(everything, np.arange(len(task)))
    for part, fraction in ((split.test, 0.2), (split.val, 0.1), (split.train, 0.7)):
        np.testing.assert_array_equal(np.bincount(task.labels[part], minlength=3),
                                      np.round(fraction * np.array([200, 40, 60])))


def test_stratified_split_refuses_impossible_fractions():
    with pytest.raises(ValueError, match="test \\+ val < 1"):
        stratified_split(_task(), test_fraction=0.6, val_fraction=0.5)
    with pytest.raises(ValueError, match="holds no 'class1' example"):
        stratified_split(_task((50, 2)), test_fraction=0.2, val_fraction=0.1)


def test_stratified_holdout_cuts_each_class():
    task = _task((90, 18))
    rest_of_fold = np.arange(0, 108, 2)                     # any subset of indices
    held, rest = stratified_holdout(task, rest_of_fold, 1 / 3, seed=0)
    assert sorted(np.concatenate([held, rest])) == list(rest_of_fold)
    total = np.bincount(task.labels[rest_of_fold])
    np.testing.assert_array_equal(np.bincount(task.labels[held]), np.round(total / 3))


# -- k folds ---------------------------------------------------------------------------------
def test_every_example_is_in_exactly_one_test_fold():
    task = _task((53, 17))
    folds = kfold(task, k=5, seed=1)
    tests = np.concatenate([f.test for f in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(len(task)))
    for f in folds:
        np.testing.assert_array_equal(np.sort(np.concatenate([f.train, f.test])),
                                      np.arange(len(task)))
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    per_class = np.array([np.bincount(task.labels[f.test], minlength=2) for f in folds])
    assert (per_class.max(axis=0) - per_class.min(axis=0) <= 1).all()    # stratified
    again = kfold(task, k=5, seed=1)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(folds, again))


def test_kfold_needs_k_examples_of_every_class():
    with pytest.raises(ValueError, match="smallest class of 'toy' has 3"):
        kfold(_task((40, 3)), k=5)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold(_task(), k=1)


# -- the real files --------------------------------------------------------------------------
def test_sms_spam_has_all_5574_lines_and_the_balanced_split_is_1045_149_300():
    task = _real_task("sms-spam")
    assert len(task) == 5574 and task.label_names == ("ham", "spam")
    np.testing.assert_array_equal(task.class_counts(), [4827, 747])
    assert sum('"' in t for t in task.texts) > 0             # the lines pandas merges
    split = balanced_split(task)
    assert [len(p) for p in split] == [1045, 149, 300]
    np.testing.assert_array_equal(np.bincount(task.labels[np.concatenate(split)]), [747, 747])


def test_polarity_has_5331_sentences_of_each_class():
    task = _real_task("polarity")
    assert len(task) == 10662 and task.label_names == ("neg", "pos")
    np.testing.assert_array_equal(task.class_counts(), [5331, 5331])
    assert task.texts[0] == "simplistic , silly and tedious . "
