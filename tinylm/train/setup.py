"""Everything a training run needs before its first step: data, tokenizer, model, optimizer.

    prepare_data(cfg[, tokenizer])               -> PreparedData(tokenizer, train, val, test)
    data_provenance(dataset)                     -> the data's sha256, for the checkpoint
    build_model(name, model_config, vocab_size)  -> the model, vocab_size from the tokenizer
    with_training_window(cfg, model)             -> cfg with block_size filled in and checked
    build_optimizer(model, cfg)                  -> SGD / Adam / AdamW, weight decay on matrices
    build_batcher(train_ids, cfg)                -> random windows or sequential streams
    total_iters(cfg, batcher)                    -> the number of optimizer steps

Datasets with their own splits (PTB) use them; derived datasets (``DERIVED_DATASETS``: a
name -> the registry files it is built from and the function that builds its train and
validation text, e.g. "tang-poems", tinylm/data/poetry.py) split themselves, by
``val_fraction``, and their tokenizer is built on both texts; the others are split by
``val_fraction`` (first 90% train, last 10% validation, as nanoGPT).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy

from tinylm.data import (CharTokenizer, RandomWindowBatcher, SequentialBatcher, WordTokenizer,
                         dataset_info, load_text, split_train_val)
from tinylm.data.bpe import BPETokenizer
from tinylm.data.openai_bpe import OpenAIBPETokenizer
from tinylm.data.poetry import POEM_FILES, tang_poem_texts
from tinylm.models import get_model_class
from tinylm.optim import SGD, Adam, AdamW, decay_groups

SPLIT_DATASETS = {"ptb": ("ptb.train", "ptb.valid", "ptb.test")}
# name -> (the registry files it is read from, val_fraction -> (train text, validation text))
DERIVED_DATASETS = {"tang-poems": (POEM_FILES, tang_poem_texts)}


@dataclass
class PreparedData:
    tokenizer: object
    train: numpy.ndarray
    val: numpy.ndarray
    test: numpy.ndarray | None = None


def make_tokenizer(kind: str, text: str, min_freq: int = 1, subword_vocab_size: int = 1024):
    """The tokenizer ``kind`` built on ``text``: characters, words, a byte-level BPE with
    ``subword_vocab_size`` tokens learned from it (GPT-2's split pattern), or OpenAI's GPT-2
    or cl100k encoder (fixed: ``text`` is not used)."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "word":
        return WordTokenizer.from_text(text, min_freq=min_freq)
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size=subword_vocab_size)
    if kind in ("gpt2", "cl100k"):
        return OpenAIBPETokenizer(kind)
    raise ValueError(f"tokenizer {kind!r} is not one of {TOKENIZER_KINDS}.")


def tokenizer_kind(tokenizer) -> str:
    """The TrainConfig.tokenizer value that stands for ``tokenizer`` (an imported run's)."""
    kind = getattr(tokenizer, "name", None) if tokenizer.type_name == "openai_bpe" \
        else tokenizer.type_name
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"a language-model run's tokenizer is one of {TOKENIZER_KINDS}; this "
                         f"one is {tokenizer.type_name!r}. Give --tokenizer PATH with one of "
                         "those kinds.")
    return kind


SUBWORD_KINDS = ("bpe", "gpt2", "cl100k")
TOKENIZER_KINDS = ("char", "word", *SUBWORD_KINDS)


def _split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """A subword run splits the *text* where a character run splits its ids (at
    int(N * (1 - val_fraction)) characters), so both are scored on the same validation
    characters and their nats per character compare; a BPE then learns its merges from the
    training part only, so no merge is fitted to validation text."""
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


def _encode(tokenizer, text: str) -> numpy.ndarray:
    return numpy.asarray(tokenizer.encode(text), dtype=numpy.int64)


def dataset_files(dataset: str) -> tuple:
    """The registry names of the files a training dataset is read from."""
    if dataset in DERIVED_DATASETS:
        return DERIVED_DATASETS[dataset][0]
    return SPLIT_DATASETS.get(dataset, (dataset,))


def data_provenance(dataset: str) -> dict:
    """What a checkpoint records about its data: each file's registry name and sha256 (the
    files are verified against these on every load, tinylm/data/datasets.py)."""
    return {"dataset": dataset,
            "sha256": {name: dataset_info(name).sha256 for name in dataset_files(dataset)}}


def prepare_data(cfg, tokenizer=None) -> PreparedData:
    """Load ``cfg.dataset`` and encode every split, with ``tokenizer`` (a resumed or loaded
    run's own) or with a new one built on the training text (both texts of a derived
    dataset, so that no validation character is unknown)."""
    if cfg.dataset in DERIVED_DATASETS:
        train_text, val_text = DERIVED_DATASETS[cfg.dataset][1](cfg.val_fraction)
        if tokenizer is None:
            text = train_text if cfg.tokenizer in SUBWORD_KINDS else train_text + val_text
            tokenizer = make_tokenizer(cfg.tokenizer, text, cfg.min_freq, cfg.subword_vocab_size)
        return PreparedData(tokenizer, _encode(tokenizer, train_text),
                            _encode(tokenizer, val_text))
    texts = [load_text(name) for name in dataset_files(cfg.dataset)]    # PTB: its 3 splits
    if len(texts) == 1 and cfg.tokenizer in SUBWORD_KINDS:
        texts = list(_split_text(texts[0], cfg.val_fraction))
    if tokenizer is None:
        tokenizer = make_tokenizer(cfg.tokenizer, texts[0], cfg.min_freq, cfg.subword_vocab_size)
    if len(texts) > 1:
        return PreparedData(tokenizer, *(_encode(tokenizer, t) for t in texts))
    train, val = split_train_val(_encode(tokenizer, texts[0]), cfg.val_fraction)
    return PreparedData(tokenizer, train, val)


def build_model(name: str, model_config: dict, vocab_size: int):
    """The model family ``name`` with ``vocab_size`` taken from the tokenizer."""
    config = dict(model_config, vocab_size=vocab_size)
    return get_model_class(name).from_config(config)


def with_training_window(cfg, model):
    """cfg with ``block_size`` (tokens per training window) resolved against the model.

    None means the model's context (``model.context_size``: GPT's block_size, the MLP's
    window, the n-gram's N - 1); a model with an unbounded context (recurrent) needs an
    explicit value. A window longer than ``model.longest_window`` (GPT) is an error.
    """
    window = model.context_size if cfg.block_size is None else cfg.block_size
    if window is None:
        raise ValueError(f"{type(model).__name__} has no fixed context: set the training "
                         "window with TrainConfig.block_size (--block-size).")
    if window < 1:
        raise ValueError(f"TrainConfig.block_size={window} must be an integer >= 1.")
    limit = model.longest_window
    if limit is not None and window > limit:
        raise ValueError(f"TrainConfig.block_size={window} is longer than the model's "
                         f"block_size={limit}; lower --block-size or raise --model "
                         f"block_size (or leave --block-size unset to use the model's).")
    return dataclasses.replace(cfg, block_size=window)


def build_optimizer(model, cfg):
    """Weight decay applies to matrices (ndim >= 2) only, never to biases or norms
    (``tinylm.optim.decay_groups``)."""
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    groups = decay_groups(params, cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    if cfg.optimizer == "adam":
        return Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    raise ValueError(f"optimizer {cfg.optimizer!r} is not one of 'adamw', 'adam', 'sgd'.")


def build_batcher(train_ids, cfg):
    """Windows of cfg.block_size tokens (resolved first by ``with_training_window``)."""
    if cfg.block_size is None:
        raise ValueError("TrainConfig.block_size is unset: resolve it against the model with "
                         "with_training_window(cfg, model) before building the batcher.")
    if cfg.batching == "random":
        return RandomWindowBatcher(train_ids, cfg.batch_size, cfg.block_size, seed=cfg.seed)
    if cfg.batching == "sequential":
        return SequentialBatcher(train_ids, cfg.batch_size, cfg.block_size)
    raise ValueError(f"batching {cfg.batching!r} is not 'random' or 'sequential'.")


def total_iters(cfg, batcher) -> int:
    """``epochs`` x steps per epoch for sequential batching when epochs > 0, else max_iters."""
    if cfg.epochs > 0:
        if not hasattr(batcher, "steps_per_epoch"):
            raise ValueError("epochs > 0 needs batching='sequential'; use max_iters with "
                             "random windows.")
        return cfg.epochs * batcher.steps_per_epoch
    return cfg.max_iters
