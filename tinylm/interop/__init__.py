"""Hugging Face checkpoints in and out (layer 5): tinylm's GPT and BERT read from and written
to the directory ``save_pretrained`` writes -- config.json + model.safetensors -- with the
``safetensors`` library's NumPy API; torch and transformers are never imported.

    tinylm/interop/hf_format.py   the directory: config.json, safetensors (shards, BF16), atomic writes
    tinylm/interop/checks.py      config values and tensor names/shapes checked, errors naming them
    tinylm/interop/gpt2.py        GPT2LMHeadModel <-> GPT (the mapping table is there)
    tinylm/interop/bert.py        BertForMaskedLM / BertForPreTraining <-> BERT

    model, family, notes = load_hf(folder)        # family "gpt" or "bert", by model_type
    save_hf(model, folder)                        # GPT -> GPT-2, BERT -> BERT

``tinylm import-hf DIR RUN`` and ``tinylm export-hf RUN DIR`` are the command-line faces.
"""

from __future__ import annotations

from tinylm.interop import bert, gpt2
from tinylm.interop.hf_format import HFFormatError, read_hf_dir
from tinylm.models.bert import BERT
from tinylm.models.gpt import GPT

FAMILIES = {"gpt2": "gpt", "bert": "bert"}      # config.json's model_type -> tinylm family


def family_of(config: dict, where: str = "config.json") -> str:
    """'gpt' or 'bert' from config.json's model_type, or an error naming the supported ones."""
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise HFFormatError(f"{where}: model_type={model_type!r} (architectures "
                            f"{config.get('architectures')}) is not an architecture tinylm "
                            f"reads; it reads {sorted(FAMILIES)} (GPT-2 language models and "
                            "BERT masked LMs).")
    return FAMILIES[model_type]


def load_hf(folder, dtype="float32"):
    """A Hugging Face checkpoint directory -> (model in eval mode, family, notes)."""
    config, tensors = read_hf_dir(folder)
    family = family_of(config, str(folder))
    convert = gpt2.gpt_from_hf if family == "gpt" else bert.bert_from_hf
    model, notes = convert(config, tensors, dtype, where=str(folder))
    return model, family, notes


def save_hf(model, folder, dtype=None):
    """Write a tinylm GPT or BERT in Hugging Face format -> the folder."""
    if isinstance(model, GPT):
        return gpt2.save_gpt2(model, folder, dtype)
    if isinstance(model, BERT):
        return bert.save_bert(model, folder, dtype)
    raise TypeError(f"tinylm exports GPT and BERT to Hugging Face format, not "
                    f"{type(model).__name__}.")
