"""Word embeddings from the command line: train, similar, analogy, eval, the exported
vectors.txt, and the mistakes a user can make with them (each a one-line error)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cli_helpers import run_cli
from tinylm.cli import main
from tinylm.embeddings.vectors import WordVectors

QUICK = ["--epochs", "1", "--model", "vector_size=16", "--progress", "false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("embeddings")
    for preset in ("ptb-cbow", "ptb-glove"):
        family = "glove" if preset == "ptb-glove" else "word2vec"
        assert main(["train", family, "--preset", preset, "--out-dir", str(root / preset),
                     *QUICK]) == 0
    return root


@pytest.mark.parametrize("preset", ["ptb-cbow", "ptb-glove"])
def test_a_run_saves_a_checkpoint_and_vectors_gensim_can_read(preset, runs):
    folder = runs / preset
    assert (folder / "ckpt.json").exists() and (folder / "vectors.txt").exists()
    ours = WordVectors.load_word2vec_format(folder / "vectors.txt")
    assert len(ours) > 9000 and ours.dim == 16
    gensim = pytest.importorskip("gensim")
    theirs = gensim.models.KeyedVectors.load_word2vec_format(str(folder / "vectors.txt"))
    assert list(theirs.index_to_key) == ours.words
    np.testing.assert_allclose(theirs.vectors, ours.vectors, rtol=0, atol=1e-6)


def test_similar_and_analogy_print_ranked_words(runs, capsys):
    status, out, _ = run_cli(["similar", str(runs / "ptb-cbow"), "stock", "--topn", "5"], capsys)
    lines = out.strip().splitlines()
    assert status == 0 and len(lines) == 5
    cosines = [float(line.split()[-1]) for line in lines]
    assert cosines == sorted(cosines, reverse=True) and "stock" not in out.split()[::2]
    status, out, _ = run_cli(["analogy", str(runs / "ptb-cbow"), "man", "king", "woman"], capsys)
    assert status == 0 and len(out.strip().splitlines()) == 5


@pytest.mark.parametrize("preset", ["ptb-cbow", "ptb-glove"])
def test_eval_prints_the_three_evaluations_with_their_coverage(preset, runs, capsys):
    status, out, _ = run_cli(["eval", str(runs / preset)], capsys)
    assert status == 0
    assert re.search(r"^analogies: accuracy [0-9.]+ = \d+ of \d+ questions .*coverage", out,
                     re.MULTILINE), out
    for name in ("wordsim353", "simlex999"):
        assert re.search(rf"^{name}: Spearman [-0-9.]+ over \d+ pairs .*coverage", out,
                         re.MULTILINE), out


MISTAKES = [
    (["similar", "{cbow}", "Stocks"], r"not in the vocabulary.*'stocks'"),
    (["similar", "{cbow}", "qwertyuiop"], "not in the vocabulary"),
    (["analogy", "{cbow}", "man", "kingg", "woman"], r"'kingg'.*not in the vocabulary"),
    (["similar", "{cbow}", "stock", "--topn", "0"], "topn.*>= 1"),
    (["generate", "{cbow}"], "word vectors, not a language model"),
    (["eval", "{cbow}", "--split", "test"], "apply to language models"),
    (["similar", "{tmp}", "stock"], "no checkpoint"),
    (["train", "word2vec", "--preset", "ptb-cbow", "--out-dir", "{cbow}", *QUICK],
     "already holds a checkpoint"),
    (["train", "word2vec", "--preset", "ptb-cbow", "--lr", "0.1", "--out-dir", "{tmp}"],
     "--lr does not apply to word2vec"),
    (["train", "word2vec", "--resume", "--out-dir", "{cbow}"], "--resume is not supported"),
    (["train", "word2vec", "--model", "window=0", "--out-dir", "{tmp}"], "window=0"),
    (["train", "word2vec", "--model", "architecture=glove", "--out-dir", "{tmp}"],
     "architecture='glove'"),
    (["train", "word2vec", "--model", "x_max=10", "--out-dir", "{tmp}"], "unknown configuration"),
    (["train", "glove", "--model", "alpha=-1", "--out-dir", "{tmp}"], "alpha"),
    (["train", "word2vec", "--preset", "ptb-glove", "--out-dir", "{tmp}"], "is for model 'glove'"),
    (["train", "word2vec", "--dataset", "nowhere", "--out-dir", "{tmp}"], "unknown dataset"),
    (["train", "word2vec", "--model", "min_count=100000000", "--out-dir", "{tmp}", *QUICK],
     "min_count"),
]


@pytest.mark.parametrize("argv, expect", MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_mistakes_are_one_line_errors(argv, expect, runs, tmp_path, capsys):
    argv = [a.format(cbow=runs / "ptb-cbow", tmp=tmp_path / "new") for a in argv]
    status, _, err = run_cli(argv, capsys)
    assert status in (1, 2) and "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 3, err
    assert re.search(expect, err), f"{expect!r} not in:\n{err}"
    assert not (tmp_path / "new").exists()
