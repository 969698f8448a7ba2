"""Presets for the word embeddings (tinylm/embeddings/), chapter 05.

``ptb-cbow``, ``ptb-skipgram`` and ``ptb-glove`` train on the Penn Treebank's training text
(887,521 words, one sentence per line) with the settings most often quoted for Word2Vec and
used by ``tinylm bench word2vec`` for both tinylm and gensim: 100-d vectors, a window of 5,
words seen fewer than 5 times dropped, 5 negative samples, subsampling threshold 1e-3, two
threads, 5 epochs.

GloVe uses the same vocabulary and 100-d vectors, alpha 3/4 and glove.c's AdaGrad at 0.05,
but the settings that measured best on PTB (chapter 05, section 9) instead of five epochs of
the paper's: a window of 10, x_max 10 (the paper's 100 leaves f(x) tiny for almost every
count of a corpus this small) and 25 epochs (about 30 seconds); five epochs of the paper's
settings score WordSim353 0.08-0.11 against 0.20.
"""

_WORD2VEC = {"vector_size": 100, "window": 5, "min_count": 5, "negative": 5, "sample": 1e-3,
             "alpha": 0.025, "min_alpha": 1e-4, "epochs": 5, "workers": 2}
_PTB = {"dataset": "ptb"}

PRESETS = {
    "ptb-cbow": {"model": "word2vec", "model_config": {**_WORD2VEC, "architecture": "cbow"},
                 "train": {**_PTB, "out_dir": "runs/ptb-cbow"}},
    "ptb-skipgram": {"model": "word2vec",
                     "model_config": {**_WORD2VEC, "architecture": "skipgram"},
                     "train": {**_PTB, "out_dir": "runs/ptb-skipgram"}},
    "ptb-glove": {"model": "glove",
                  "model_config": {"vector_size": 100, "window": 10, "min_count": 5,
                                   "x_max": 10.0, "alpha": 0.75, "learning_rate": 0.05,
                                   "epochs": 25, "workers": 2},
                  "train": {**_PTB, "out_dir": "runs/ptb-glove"}},
}
