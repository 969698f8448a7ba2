"""A word-embedding run of ``tinylm train word2vec|glove``: corpus -> trainer -> checkpoint and
``vectors.txt`` (chapter 05).

    history = train_embeddings("word2vec", config, dataset="ptb", out_dir="runs/ptb-cbow")
    vectors = load_word_vectors("runs/ptb-cbow")     # a WordVectors, for similar/analogy/eval

The run folder holds the checkpoint of tinylm/checkpoint.py (``ckpt.json`` names the array
file; everything under its checksums) and the vectors in the standard word2vec text format,
``vectors.txt``, which gensim's ``KeyedVectors.load_word2vec_format`` reads:

    ckpt-<hash>.npz   model/<name>   the trainer's matrices (Word2Vec: w_in, w_out)
                      vocab/counts   how often each word occurs in the corpus
    ckpt.json         {"model": family, "model_config": {...}, "train_config": {"dataset",
                       "out_dir"}, "run": {"epochs": [...]}, "provenance": {"words": [...],
                       "dataset", "sha256"}}

The corpus is the dataset's training text, one sentence per line (PTB: ptb.train.txt).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy

from tinylm.checkpoint import CheckpointError, save_checkpoint, split_prefix
from tinylm.data import load_text
from tinylm.embeddings.corpus import corpus_from_text
from tinylm.embeddings.registry import EMBEDDING_FAMILIES, get_embedding_class
from tinylm.embeddings.vectors import WordVectors
from tinylm.train.loop import CHECKPOINT_NAME
from tinylm.train.restore import read_run
from tinylm.train.setup import data_provenance, dataset_files
from tinylm.typed_config import config_from_dict

VECTORS_FILE = "vectors.txt"


def embedding_config(family: str, values: dict):
    """The family's configuration dataclass from plain data, every field checked."""
    _, config_class = get_embedding_class(family)
    return config_from_dict(config_class, values, owner=family)


def _progress_bar(total_words: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total_words, unit="word", unit_scale=True, dynamic_ncols=True)


def train_embeddings(family: str, config, dataset: str, out_dir, progress: bool = True,
                     log=print) -> list:
    """Train ``family`` on the dataset's training text; save the run to ``out_dir``.

    Returns the per-epoch history (seconds, words/s, loss) that the trainer reports.
    """
    text = load_text(dataset_files(dataset)[0])
    corpus = corpus_from_text(text, config.min_count)
    trainer_class, _ = get_embedding_class(family)
    trainer = trainer_class(config, corpus.words, corpus.counts)
    log(f"{family}: {corpus.vocab_size:,} words in the vocabulary (min_count "
        f"{config.min_count}), {corpus.total_words:,} words of text, {config.epochs} epochs")
    bar = _progress_bar(corpus.total_words * config.epochs, progress)
    seen = [0]

    def on_progress(done, total, loss):
        if bar is not None:
            bar.update(done - seen[0])
            bar.set_postfix(loss=f"{loss:.4f}")
        seen[0] = done

    try:
        history = trainer.train(corpus, on_progress=on_progress)
    finally:
        if bar is not None:
            bar.close()
    for entry in history:
        log(f"epoch {entry['epoch']}: loss {entry['loss']:.4f}, "
            f"{entry['words_per_s']:,.0f} words/s")
    save_embedding_run(out_dir, family, trainer, corpus, dataset, history)
    return history


def save_embedding_run(out_dir, family: str, trainer, corpus, dataset: str, history) -> Path:
    """The checkpoint (trainer state, counts, words, data provenance), then vectors.txt."""
    out_dir = Path(out_dir)
    arrays = {f"model/{k}": v for k, v in trainer.state_dict().items()}
    arrays["vocab/counts"] = numpy.asarray(corpus.counts, dtype=numpy.int64)
    meta = {"model": family, "model_config": dataclasses.asdict(trainer.config),
            "train_config": {"dataset": dataset, "out_dir": str(out_dir)},
            "run": {"epochs": list(history)},
            "provenance": {"words": list(corpus.words), **data_provenance(dataset)}}
    path = save_checkpoint(out_dir / CHECKPOINT_NAME, arrays, meta)
    WordVectors(corpus.words, trainer.vectors).save_word2vec_format(out_dir / VECTORS_FILE)
    return path


def is_embedding_run(meta: dict) -> bool:
    return meta["model"] in EMBEDDING_FAMILIES


def load_word_vectors(run) -> WordVectors:
    """The word vectors of an embedding run folder (checked like any checkpoint)."""
    arrays, meta = read_run(run)
    if not is_embedding_run(meta):
        raise CheckpointError(f"{run} is a {meta['model']!r} language-model run, not a "
                              f"word-embedding run ({', '.join(sorted(EMBEDDING_FAMILIES))}).")
    words = meta["provenance"].get("words")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise CheckpointError(f"{run}: the checkpoint records no vocabulary "
                              "(provenance.words).")
    config = embedding_config(meta["model"], meta["model_config"])
    trainer_class, _ = get_embedding_class(meta["model"])
    trainer = trainer_class(config, words, arrays.get("vocab/counts"))
    trainer.load_state_dict(split_prefix(arrays, "model"))
    vectors = trainer.vectors
    if not bool(numpy.isfinite(vectors).all()):
        raise CheckpointError(f"{run}: the word vectors hold NaN or infinite values; the run "
                              "that wrote them diverged. Retrain with a lower learning rate.")
    return WordVectors(words, vectors)
