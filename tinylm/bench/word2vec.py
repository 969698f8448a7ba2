"""``tinylm bench word2vec``: Word2Vec trained by tinylm and by gensim on the same corpus with
the same settings in the same run; speed and the quality of the vectors, side by side.

    tinylm bench word2vec [--architecture cbow|skipgram|both] [--epochs 5] [--seeds 1 2 3]
                          [--workers 2] [--dataset ptb] [--no-gensim] [--json]

Settings (the ``ptb-cbow`` / ``ptb-skipgram`` presets): 100-d vectors, window 5, min_count 5,
5 negatives, subsampling 1e-3, alpha 0.025 decayed linearly to 1e-4. Both libraries get the
PTB training text as the same list of sentences (one per line) and build their vocabulary
before the clock starts; the clock covers training only.

    words/s = (words in the corpus) x epochs / training seconds

(the raw count, 887,521 words for PTB, the same for both sides: what each side actually
processes after subsampling is its own business). ``ratio`` is tinylm's words/s over
gensim's: at 1.0 they are equally fast. Quality: accuracy on the Google analogies and
Spearman's rho on WordSim353 and SimLex-999, computed by tinylm's evaluation for both sets of
vectors (tests/test_word_vectors.py checks that it counts exactly as gensim's own). With
several ``--seeds`` every figure is the mean, and ``runs`` lists each seed.
"""

from __future__ import annotations

import importlib
import os
import time

import numpy

from tinylm.data import load_text
from tinylm.embeddings.corpus import corpus_from_text
from tinylm.embeddings.evaluation import evaluate_all
from tinylm.embeddings.vectors import WordVectors
from tinylm.embeddings.word2vec import Word2Vec, Word2VecConfig
from tinylm.train.presets import get_preset
from tinylm.train.setup import dataset_files

QUALITY = ("analogies", "wordsim353", "simlex999")


def add_arguments(parser) -> None:
    parser.add_argument("--architecture", choices=("cbow", "skipgram", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dataset", default="ptb")
    parser.add_argument("--no-gensim", action="store_true", help="time tinylm alone")


def _config(architecture: str, epochs: int, seed: int, workers: int) -> Word2VecConfig:
    values = dict(get_preset(f"ptb-{architecture}")["model_config"])
    return Word2VecConfig(**dict(values, epochs=epochs, seed=seed, workers=workers))


def _quality(vectors: WordVectors) -> dict:
    scores = evaluate_all(vectors)
    return {name: scores[name] for name in QUALITY}


def _time_tinylm(corpus, config) -> tuple[float, WordVectors]:
    trainer = Word2Vec(config, corpus.words, corpus.counts)
    started = time.perf_counter()
    trainer.train(corpus)
    seconds = time.perf_counter() - started
    return seconds, WordVectors(corpus.words, trainer.vectors)


def _time_gensim(gensim, sentences, config) -> tuple[float, WordVectors]:
    model = gensim.models.Word2Vec(
        vector_size=config.vector_size, window=config.window, min_count=config.min_count,
        negative=config.negative, sample=config.sample, alpha=config.alpha,
        min_alpha=config.min_alpha, sg=int(config.architecture == "skipgram"), hs=0,
        cbow_mean=1, workers=config.workers, seed=config.seed, epochs=config.epochs)
    model.build_vocab(sentences)
    started = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=config.epochs)
    seconds = time.perf_counter() - started
    return seconds, WordVectors(list(model.wv.index_to_key), model.wv.vectors)


def _one_seed(corpus, sentences, gensim, architecture, args, seed) -> dict:
    config = _config(architecture, args.epochs, seed, args.workers)
    words = corpus.total_words * config.epochs
    seconds, vectors = _time_tinylm(corpus, config)
    row = {"seed": seed, "tinylm_words_per_s": words / seconds,
           **{f"tinylm_{k}": v for k, v in _quality(vectors).items()}}
    if gensim is not None:
        seconds, vectors = _time_gensim(gensim, sentences, config)
        row.update({"gensim_words_per_s": words / seconds,
                    **{f"gensim_{k}": v for k, v in _quality(vectors).items()}})
        row["ratio"] = row["tinylm_words_per_s"] / row["gensim_words_per_s"]
    return row


def _mean_of(rows: list) -> dict:
    keys = [k for k in rows[0] if k != "seed"]
    return {k: float(numpy.mean([row[k] for row in rows])) for k in keys}


def _import_gensim(skip: bool):
    if skip:
        return None
    try:
        return importlib.import_module("gensim")
    except ImportError:
        return None


def run(args) -> dict:
    text = load_text(dataset_files(args.dataset)[0])
    corpus = corpus_from_text(text, min_count=5)
    sentences = [line.split() for line in text.splitlines()]
    gensim = _import_gensim(args.no_gensim)
    architectures = ("cbow", "skipgram") if args.architecture == "both" else (args.architecture,)
    result = {"dataset": args.dataset, "corpus_words": corpus.total_words,
              "epochs": args.epochs, "workers": args.workers, "cores": os.cpu_count(),
              "gensim_version": getattr(gensim, "__version__", None)}
    for architecture in architectures:
        rows = [_one_seed(corpus, sentences, gensim, architecture, args, seed)
                for seed in args.seeds]
        summary = {**_mean_of(rows), "runs": rows} if len(rows) > 1 else rows[0]
        if len(architectures) == 1:
            result.update(summary)
        else:
            result[architecture] = summary
    return result
