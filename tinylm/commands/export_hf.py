"""``tinylm export-hf RUN DIR [--weights best|latest] [--dtype float32|float64]
[--overwrite]``

Write the GPT or BERT of a tinylm run RUN (``tinylm train gpt``, ``tinylm pretrain
gpt|bert``) to DIR in Hugging Face format (tinylm/interop/):

    DIR/config.json             architectures, model_type and every size field
    DIR/model.safetensors       the weights, named as transformers names them
    DIR/tinylm_tokenizer.json   the run's tokenizer (``tinylm import-hf DIR RUN2`` reads it)
    DIR/vocab.json, merges.txt  a GPT-2-pattern byte-level BPE, as GPT2Tokenizer reads it
      or vocab.txt              a WordPiece, as BertTokenizer reads it
    DIR/tokenizer_config.json   which of the two (tinylm/interop/hf_tokenizer.py)

so that ``transformers.GPT2LMHeadModel.from_pretrained(DIR)`` (a GPT) or
``BertForMaskedLM.from_pretrained(DIR)`` (a BERT; ``BertForPreTraining`` when it has an NSP
head) loads it and computes the same logits. A pre-training run keeps two sets of weights;
``--weights`` chooses (default best, the ones fine-tuning starts from). Transformers has no
reader for tinylm's tokenizers, so the tokenizer travels as tinylm JSON beside the weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy

from tinylm.checkpoint import checkpoint_exists, load_checkpoint, load_metadata, split_prefix
from tinylm.commands.import_hf import TOKENIZER_FILE
from tinylm.files import write_text_atomically
from tinylm.interop import save_hf
from tinylm.interop.hf_format import CONFIG_FILE
from tinylm.interop.hf_tokenizer import TOKENIZER_FILES, hf_tokenizer_files
from tinylm.train.pretrain_run import FAMILIES, PRETRAINED_MODEL
from tinylm.train.restore import checkpoint_base, load_trained, run_tokenizer


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The run, the folder, which weights and in what precision."""
    p.add_argument("run", metavar="RUN", help="OUT_DIR of `tinylm train gpt` or `tinylm "
                                              "pretrain gpt|bert`")
    p.add_argument("hf_dir", metavar="DIR", help="the folder to write")
    p.add_argument("--weights", choices=("best", "latest"), default="best",
                   help="a pre-training run's best (default) or latest parameters")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--overwrite", action="store_true", help="replace DIR's checkpoint")


def load_run_model(run_dir, weights: str = "best"):
    """(model, tokenizer) of a GPT training run or a GPT/BERT pre-training run."""
    base = checkpoint_base(run_dir)
    if not checkpoint_exists(base):
        raise ValueError(f"no checkpoint in {run_dir} (looked for {base}.json); give the "
                         "OUT_DIR of `tinylm train gpt` or `tinylm pretrain gpt|bert`.")
    meta = load_metadata(base)
    if meta.get("provenance", {}).get("quantization") is not None:
        raise ValueError(f"{run_dir} holds a quantised model (`tinylm quantize`): Hugging Face's "
                         "GPT2LMHeadModel reads float weights. Export the run it was quantised "
                         f"from ({meta['provenance']['quantization'].get('source', 'RUN')}).")
    if meta.get("model") == "gpt":
        model, tokenizer, _ = load_trained(run_dir)
        return model, tokenizer
    if meta.get("model") != PRETRAINED_MODEL:
        raise ValueError(f"{run_dir} holds a {meta.get('model')!r} model; export-hf writes GPT "
                         "(`tinylm train gpt`, `tinylm pretrain gpt`) and BERT (`tinylm "
                         "pretrain bert`) runs, the architectures Hugging Face shares.")
    arrays, meta = load_checkpoint(base)
    family = meta.get("family")
    if family not in FAMILIES:
        raise ValueError(f"{run_dir}: the pre-training run's family {family!r} is not one of "
                         f"{sorted(FAMILIES)}.")
    model = FAMILIES[family].from_config(meta["model_config"])
    model.load_state_dict(split_prefix(arrays, "best" if weights == "best" else "model"))
    return model.eval(), run_tokenizer(meta)


def run(args) -> int:
    """Export, then print where the files went."""
    out_dir = Path(args.hf_dir)
    if (out_dir / CONFIG_FILE).exists() and not args.overwrite:
        raise ValueError(f"{out_dir} already holds a checkpoint ({out_dir / CONFIG_FILE}); it "
                         "is kept. Replace it with --overwrite, or choose another DIR.")
    model, tokenizer = load_run_model(args.run, args.weights)
    not_finite = [name for name, p in model.named_parameters()
                  if not bool(numpy.isfinite(p.data).all())]
    if not_finite:
        raise ValueError(f"{args.run}: tensors {not_finite[:3]} hold NaN or infinite values; "
                         "the run diverged, and there is nothing to export.")
    save_hf(model, out_dir, numpy.dtype(args.dtype))
    write_text_atomically(out_dir / TOKENIZER_FILE,
                          json.dumps(tokenizer.to_dict(), ensure_ascii=False, indent=1))
    hf_files, no_files_because = hf_tokenizer_files(tokenizer, model.config.block_size)
    for name, text in hf_files.items():
        write_text_atomically(out_dir / name, text)
    for stale in set(TOKENIZER_FILES) - set(hf_files):      # an earlier export's, replaced
        (out_dir / stale).unlink(missing_ok=True)
    config = json.loads((out_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    written = ", ".join(["config.json", "model.safetensors", TOKENIZER_FILE, *hf_files])
    print(f"exported {type(model).__name__} ({model.num_parameters():,} parameters) as "
          f"{config['architectures'][0]} to {out_dir} ({written})")
    if no_files_because:
        print(f"note: no Hugging Face tokenizer files: {no_files_because}; {TOKENIZER_FILE} "
              "holds it for tinylm.")
    return 0
