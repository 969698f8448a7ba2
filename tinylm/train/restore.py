"""Read back what ``tinylm train`` wrote, checking everything before it is used.

    arrays, meta = read_run(out_dir)              # verified arrays and metadata of OUT_DIR/ckpt
    meta = read_run_metadata(out_dir)             # the metadata alone (no array file read)
    tokenizer = run_tokenizer(meta)               # the tokenizer the run was trained with
    check_same_data(meta, dataset)                # the data files have not changed since
    model, tokenizer, cfg = load_trained(out_dir) # the model, ready to evaluate or generate

A checkpoint's JSON is covered by its own checksum (tinylm/checkpoint.py), so a field that
is missing or of the wrong type here means a checkpoint from another program or version:
the error names the field. The tokenizer travels inside the JSON, so a model can never be
paired with another run's vocabulary; the data's sha256 is recorded beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy

from tinylm.checkpoint import (CheckpointError, checkpoint_exists, load_checkpoint, load_metadata,
                               split_prefix)
from tinylm.compress.quantize import quantize_model
from tinylm.data.tokenizers import tokenizer_from_dict
from tinylm.embeddings.registry import EMBEDDING_FAMILIES
from tinylm.models import MODEL_REGISTRY, get_model_class
from tinylm.train.config import TrainConfig
from tinylm.train.loop import CHECKPOINT_NAME
from tinylm.train.setup import data_provenance

SEQ2SEQ_MODEL = "seq2seq"       # the "model" of a seq2seq run (tinylm/train/seq2seq_run.py)
_REQUIRED = {"model": str, "model_config": dict, "train_config": dict, "run": dict,
             "provenance": dict}


def checkpoint_base(path) -> Path:
    """OUT_DIR, OUT_DIR/ckpt or OUT_DIR/ckpt.json -> OUT_DIR/ckpt."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path.with_suffix("")


def _check_fields(meta: dict, where: Path) -> None:
    for key, kind in _REQUIRED.items():
        if key not in meta:
            raise CheckpointError(f"{where}: the field {key!r} is missing; this is not a "
                                  "checkpoint of `tinylm train` (or it predates format 2).")
        if not isinstance(meta[key], kind):
            raise CheckpointError(f"{where}: the field {key!r} must be a JSON "
                                  f"{'object' if kind is dict else 'string'}, found "
                                  f"{type(meta[key]).__name__} {meta[key]!r:.60}.")
    known = {*MODEL_REGISTRY, *EMBEDDING_FAMILIES, SEQ2SEQ_MODEL}
    if meta["model"] not in known:
        raise CheckpointError(f"{where}: model family {meta['model']!r} is unknown; known "
                              f"families: {sorted(known)}.")


def _existing(path) -> Path:
    base = checkpoint_base(path)
    if not checkpoint_exists(base):
        raise CheckpointError(f"no checkpoint in {base.parent} (looked for {base.name}.json); "
                              "train one with `tinylm train MODEL --out-dir DIR`.")
    return base


def read_run(path) -> tuple[dict, dict]:
    """(arrays, meta) of the checkpoint at ``path``, with the fields every command reads
    checked to be present and of the right kind."""
    base = _existing(path)
    arrays, meta = load_checkpoint(base)
    _check_fields(meta, base.with_suffix(".json"))
    return arrays, meta


def read_run_metadata(path) -> dict:
    """The checked metadata alone (as ``read_run``), without reading the arrays: enough to
    resume a run's configuration or to tell a language model from word vectors."""
    base = _existing(path)
    meta = load_metadata(base)
    _check_fields(meta, base.with_suffix(".json"))
    return meta


def run_tokenizer(meta: dict):
    """The tokenizer stored in a run's metadata."""
    state = meta["provenance"].get("tokenizer")
    if not isinstance(state, dict):
        raise CheckpointError("the checkpoint records no tokenizer (provenance.tokenizer); it "
                              "was not written by `tinylm train`.")
    try:
        return tokenizer_from_dict(state)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint's tokenizer cannot be rebuilt: {e}") from e


def check_same_data(meta: dict, dataset: str) -> None:
    """Refuse data other than the data the run was trained on (by name and sha256)."""
    recorded = {k: meta["provenance"].get(k) for k in ("dataset", "sha256")}
    current = data_provenance(dataset)
    if recorded != current:
        raise CheckpointError(f"the run was trained on {recorded['dataset']!r} "
                              f"(sha256 {recorded['sha256']}), but the data now is "
                              f"{current['dataset']!r} (sha256 {current['sha256']}); evaluate "
                              "or resume a run on the data it was trained on.")


def _check_finite(model, where: Path) -> None:
    for name, p in model.named_parameters():
        if not bool(numpy.isfinite(p.data).all()):
            raise CheckpointError(f"{where}: tensor {name!r} holds NaN or infinite values; the "
                                  "run that wrote it diverged. Retrain with a lower learning "
                                  "rate.")


def load_trained(checkpoint, device: str = "cpu", same_data: bool = False):
    """-> (model in eval mode, tokenizer, TrainConfig). ``checkpoint``: OUT_DIR/ckpt or OUT_DIR.

    ``same_data``: also refuse when the registry's data files differ from the ones the run
    was trained on (what evaluation needs; generation does not read the data).
    """
    arrays, meta = read_run(checkpoint)
    where = checkpoint_base(checkpoint).with_suffix(".json")
    if meta["model"] in EMBEDDING_FAMILIES:
        raise CheckpointError(f"{where} holds {meta['model']} word vectors, not a language "
                              "model: there is nothing to sample or score text with. Use "
                              "`tinylm similar`, `tinylm analogy` or `tinylm eval` on it.")
    if meta["model"] == SEQ2SEQ_MODEL:
        raise CheckpointError(f"{where} holds a sequence-to-sequence model, not a language "
                              "model; use `tinylm translate` or `tinylm eval` on it.")
    cfg = TrainConfig.from_dict(meta["train_config"])
    if same_data:
        check_same_data(meta, cfg.dataset)
    tokenizer = run_tokenizer(meta)
    model = get_model_class(meta["model"]).from_config(meta["model_config"])
    if model.vocab_size != tokenizer.vocab_size:
        raise CheckpointError(f"{where}: the model has {model.vocab_size} output classes but "
                              f"its tokenizer {tokenizer.vocab_size} tokens; the checkpoint is "
                              "inconsistent.")
    model.to(dtype=numpy.dtype(cfg.dtype))
    quantization = meta["provenance"].get("quantization")
    if quantization is not None:        # a `tinylm quantize` run: its layers, then its codes
        quantize_model(model, quantization["bits"], quantization["group_size"])
    model.load_state_dict(split_prefix(arrays, "model"))
    _check_finite(model, where)
    model.to(device=device).eval()
    return model, tokenizer, cfg
