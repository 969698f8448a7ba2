"""``tinylm import-hf DIR RUN [--tokenizer PATH] [--dataset NAME] [--dtype float32|float64]
[--overwrite]``

Read the Hugging Face checkpoint in DIR (config.json + model.safetensors, what
``save_pretrained`` writes: a GPT-2 language model or a BERT masked LM; tinylm/interop/)
and write it as a tinylm run in RUN:

* GPT-2 -> a ``tinylm train gpt`` run (RUN/ckpt): ``tinylm generate RUN --prompt ...``
  samples from it, and ``tinylm eval RUN`` scores it on ``--dataset`` (default
  tinyshakespeare), which the run records as its data.
* BERT -> a ``tinylm pretrain bert`` run (its latest and best parameters both the imported
  ones): ``tinylm finetune RUN --task ...`` fine-tunes it (that needs a vocabulary that
  starts with tinylm's [PAD] [UNK] [CLS] [SEP] [MASK]).

A run carries its tokenizer. ``--tokenizer PATH`` names a tinylm tokenizer JSON (what
``Tokenizer.save`` or ``tinylm export-hf`` wrote), ``--tokenizer gpt2`` OpenAI's GPT-2
byte-level BPE (tinylm/data/openai_bpe.py). Without the flag: DIR/tinylm_tokenizer.json
(written by ``tinylm export-hf``) if it exists, else, for a GPT-2 of GPT-2's 50,257-token
vocabulary (every GPT-2 OpenAI released, and their fine-tunes), the GPT-2 tokenizer. Its
vocabulary size must be the model's.
Anything the import accepted but could not map exactly (a pooler BertForMaskedLM lacks,
dropout probabilities tinylm folds into one) is printed as a note.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tinylm.checkpoint import save_checkpoint
from tinylm.data.tokenizers import load_tokenizer, tokenizer_from_dict
from tinylm.files import sha256_of
from tinylm.interop import load_hf
from tinylm.interop.hf_format import CONFIG_FILE, weight_files
from tinylm.train.config import TrainConfig
from tinylm.train.loop import CHECKPOINT_NAME, RunState, save_run
from tinylm.train.pretrain_run import PRETRAINED_MODEL, PretrainSettings
from tinylm.train.setup import data_provenance, tokenizer_kind
from tinylm.train.steps import StepHistory

TOKENIZER_FILE = "tinylm_tokenizer.json"       # what export-hf writes beside the weights
GPT2_TOKENIZER = {"type": "openai_bpe", "name": "gpt2"}     # tinylm/data/openai_bpe.py
GPT2_VOCAB_SIZE = 50257


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The two folders, the tokenizer, the data an imported GPT is scored on."""
    p.add_argument("hf_dir", metavar="DIR", help="a Hugging Face checkpoint directory")
    p.add_argument("run", metavar="RUN", help="the tinylm run directory to write")
    p.add_argument("--tokenizer", metavar="PATH|gpt2", default=None,
                   help=f"a tinylm tokenizer JSON, or gpt2 (default: DIR/{TOKENIZER_FILE}, "
                        "else gpt2 for a GPT-2 of 50,257 tokens)")
    p.add_argument("--dataset", default="tinyshakespeare",
                   help="GPT: the data `tinylm eval RUN` scores it on (default tinyshakespeare)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--overwrite", action="store_true", help="replace RUN's checkpoint")


def find_tokenizer(hf_dir: Path, given, family: str, vocab_size: int):
    """The tokenizer named by --tokenizer (a path or "gpt2"), else the one export-hf left
    in DIR, else GPT-2's for a GPT of its vocabulary size."""
    if given == "gpt2":
        return _gpt2_tokenizer()
    if given is not None:
        return load_tokenizer(given)
    if (hf_dir / TOKENIZER_FILE).is_file():
        return load_tokenizer(hf_dir / TOKENIZER_FILE)
    if family == "gpt" and vocab_size == GPT2_VOCAB_SIZE:
        return _gpt2_tokenizer()
    raise ValueError(f"{hf_dir} has no {TOKENIZER_FILE}; a tinylm run carries its tokenizer, "
                     "so give one with --tokenizer PATH (a tinylm tokenizer JSON, as "
                     "Tokenizer.save writes it) or --tokenizer gpt2.")


def _gpt2_tokenizer():
    try:
        return tokenizer_from_dict(GPT2_TOKENIZER)
    except ValueError as e:
        raise ValueError(f"the GPT-2 tokenizer is not available in this tinylm ({e}); give "
                         "--tokenizer PATH.") from e


def source_provenance(hf_dir: Path) -> dict:
    """Where the weights came from: the folder and the sha256 of its files."""
    files = [hf_dir / CONFIG_FILE, *weight_files(hf_dir)]
    return {"hf_dir": str(hf_dir.resolve()),
            "sha256": {f.name: sha256_of(f) for f in files}}


def run(args) -> int:
    """Import DIR, write RUN, print what was written and any notes."""
    hf_dir, out_dir = Path(args.hf_dir), Path(args.run)
    checkpoint = out_dir / CHECKPOINT_NAME
    if checkpoint.with_suffix(".json").exists() and not args.overwrite:
        raise ValueError(f"{out_dir} already holds a checkpoint ({checkpoint}.json); it is "
                         "kept. Replace it with --overwrite, or choose another RUN.")
    model, family, notes = load_hf(hf_dir, args.dtype)
    tokenizer = find_tokenizer(hf_dir, args.tokenizer, family, model.vocab_size)
    if tokenizer.vocab_size != model.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model's "
                         f"vocabulary (vocab_size in {hf_dir / CONFIG_FILE}) has "
                         f"{model.vocab_size}; give the tokenizer the model was trained with.")
    provenance = {"tokenizer": tokenizer.to_dict(), "imported_from": source_provenance(hf_dir)}
    if family == "gpt":
        written = _write_gpt_run(out_dir, model, tokenizer, provenance, args)
    else:
        written = _write_bert_run(out_dir, model, provenance)
    for note in notes:
        print(f"note: {note}")
    print(f"imported {family} ({model.num_parameters():,} parameters, vocabulary "
          f"{model.vocab_size:,}) from {hf_dir} -> {written}")
    return 0


def _write_gpt_run(out_dir: Path, model, tokenizer, provenance: dict, args) -> Path:
    """A `tinylm train gpt` checkpoint: no optimizer state, zero steps, the data recorded."""
    cfg = TrainConfig(dataset=args.dataset, tokenizer=tokenizer_kind(tokenizer), dtype=args.dtype,
                      block_size=model.config.block_size, out_dir=str(out_dir), max_iters=0,
                      progress=False)
    provenance = {**provenance, **data_provenance(args.dataset)}
    return save_run(out_dir, model, "gpt", cfg, RunState(), provenance=provenance)


def _write_bert_run(out_dir: Path, model, provenance: dict) -> Path:
    """A `tinylm pretrain bert` checkpoint: latest = best = the imported parameters."""
    c = model.config
    settings = PretrainSettings(family="bert", vocab_size=c.vocab_size, block_size=c.block_size,
                                next_sentence=c.next_sentence, max_steps=0,
                                out_dir=str(out_dir), progress=False)
    state = model.state_dict()
    arrays = {**{f"model/{k}": v for k, v in state.items()},
              **{f"best/{k}": v for k, v in state.items()}}
    meta = {"model": PRETRAINED_MODEL, "family": "bert",
            "model_config": dataclasses.asdict(c), "train_config": dataclasses.asdict(settings),
            "run": dataclasses.asdict(StepHistory()),
            "provenance": {**provenance, "corpora": {}},
            "rng": {name: m.get_rng_state() for name, m in model.named_modules()
                    if hasattr(m, "get_rng_state")}}
    return save_checkpoint(out_dir / CHECKPOINT_NAME, arrays, meta)
