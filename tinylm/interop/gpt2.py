"""GPT-2 in Hugging Face format <-> tinylm's GPT (tinylm/models/gpt.py), chapter 07.

    model, notes = load_gpt2(folder)              # config.json + model.safetensors -> GPT
    save_gpt2(model, folder)                      # GPT -> what GPT2LMHeadModel.from_pretrained reads

tinylm's GPT carries GPT-2's own parameter names, and its ``Linear`` stores W [in, out]
with y = x W + b -- exactly the layout of GPT-2's ``Conv1D`` (transformers keeps OpenAI's
TensorFlow layout). So every tensor maps one for one, with no transpose and no split:

    Hugging Face (GPT2LMHeadModel)             tinylm GPT                shape
    transformer.wte.weight                     wte                       [V, D]
    transformer.wpe.weight                     wpe                       [n_positions, D]
    transformer.h.{i}.ln_1.{weight,bias}       h.{i}.ln_1.{weight,bias}  [D]
    transformer.h.{i}.attn.c_attn.weight       h.{i}.attn.c_attn.weight  [D, 3D]  q | k | v
    transformer.h.{i}.attn.c_attn.bias         h.{i}.attn.c_attn.bias    [3D]
    transformer.h.{i}.attn.c_proj.{weight,bias} h.{i}.attn.c_proj.*      [D, D], [D]
    transformer.h.{i}.ln_2.{weight,bias}       h.{i}.ln_2.{weight,bias}  [D]
    transformer.h.{i}.mlp.c_fc.{weight,bias}   h.{i}.mlp.c_fc.*          [D, 4D], [4D]
    transformer.h.{i}.mlp.c_proj.{weight,bias} h.{i}.mlp.c_proj.*        [4D, D], [D]
    transformer.ln_f.{weight,bias}             ln_f.{weight,bias}        [D]
    lm_head.weight                             (wte: the head is tied)   [V, D]

The 3D columns of c_attn are the queries, then the keys, then the values, each split into
heads of D / n_head consecutive columns: the order of both libraries (split_qkv in
tinylm/functional/attention.py, ``split(n_embd, dim=2)`` in transformers). Checkpoints
saved by ``GPT2Model`` (OpenAI's own upload, "gpt2" on the Hub) have no ``transformer.``
prefix; both spellings are read. ``h.{i}.attn.bias`` and ``attn.masked_bias`` in older
files are the causal mask, a buffer and not weights: they are skipped. ``lm_head.weight``,
when a file has it, must equal wte (tinylm's head is always tied).

The configuration, field by field (Hugging Face's default where config.json omits one):

    n_positions -> block_size; n_layer, n_head, n_embd, vocab_size as they are
    activation_function   gelu_new or gelu_pytorch_tanh: both are GPT-2's tanh form
                          0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), tinylm's GELU
                          ("gelu", the erf form, is refused: GPT has no option for it)
    layer_norm_epsilon    1e-5 only (tinylm's GPT layer norms use PyTorch's 1e-5)
    n_inner               null or 4 n_embd (tinylm's MLP is D -> 4D -> D)
    scale_attn_weights    true (scores / sqrt(head_dim)); scale_attn_by_inverse_layer_idx
                          false; add_cross_attention false; tie_word_embeddings true
    resid_pdrop           -> dropout (tinylm has one probability for embeddings, attention
                          weights and residual branches; differing embd_pdrop / attn_pdrop
                          are reported as notes: dropout acts only in training)
    reorder_and_upcast_attn  accepted: the same maths, computed in float32 under mixed
                          precision

Anything else (the summary_* fields of GPT2DoubleHeadsModel, token ids, use_cache) does
not change the logits and is ignored. An unsupported value raises UnsupportedConfigError
naming every offending field; a tensor that is missing, unexpected or of the wrong shape
raises TensorMismatchError naming it, its shape and the expected one.
"""

from __future__ import annotations

import numpy

from tinylm.interop.checks import (UnsupportedConfigError, architecture_problems,
                                   check_floating, check_tensor_set, config_value,
                                   refuse_unsupported, same_value)
from tinylm.interop.hf_format import read_hf_dir, write_hf_dir
from tinylm.models.gpt import GPT, GPTConfig

MODEL_TYPE = "gpt2"
ARCHITECTURE = "GPT2LMHeadModel"
READABLE_ARCHITECTURES = ("GPT2LMHeadModel", "GPT2Model")
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")
LAYER_NORM_EPS = 1e-5               # tinylm's GPT: LayerNorm's default
PREFIX = "transformer."
BUFFERS = (".attn.bias", ".attn.masked_bias")      # the causal mask, not weights
HEAD = "lm_head.weight"
EMBEDDINGS = ("wte", "wpe")

# Hugging Face's defaults (transformers' GPT2Config) for the fields read here.
HF_DEFAULTS = {"n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
               "vocab_size": 50257, "n_inner": None, "activation_function": "gelu_new",
               "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1, "embd_pdrop": 0.1,
               "attn_pdrop": 0.1, "scale_attn_weights": True,
               "scale_attn_by_inverse_layer_idx": False, "add_cross_attention": False,
               "tie_word_embeddings": True}


# -- configuration ------------------------------------------------------------------------
def _value(config: dict, field: str):
    return config_value(config, field, HF_DEFAULTS[field])


def check_architecture(config: dict, where: str) -> None:
    """model_type must be gpt2, and the architectures (if named) ones whose tensors are a
    GPT-2 language model's."""
    problems = architecture_problems(config, MODEL_TYPE, READABLE_ARCHITECTURES)
    refuse_unsupported(where, problems, "tinylm reads GPT-2 language models (GPT) and BERT "
                                        "masked LMs (tinylm/interop/bert.py).")


def gpt_config_from_hf(config: dict, where: str = "config.json") -> tuple[GPTConfig, list]:
    """A GPT-2 config.json -> (GPTConfig, notes: what was accepted but not mapped exactly)."""
    check_architecture(config, where)
    n_embd = _value(config, "n_embd")
    wanted = {"activation_function": (TANH_GELUS, f"one of {list(TANH_GELUS)}, GPT-2's tanh "
                                                  "GELU"),
              "layer_norm_epsilon": ((LAYER_NORM_EPS,), f"{LAYER_NORM_EPS}"),
              "n_inner": ((4 * n_embd,), f"null or 4 * n_embd = {4 * n_embd}"),
              "scale_attn_weights": ((True,), "true"),
              "scale_attn_by_inverse_layer_idx": ((False,), "false"),
              "add_cross_attention": ((False,), "false"),
              "tie_word_embeddings": ((True,), "true: the output head is wte")}
    problems = []
    for field, (allowed, said) in wanted.items():
        value = n_embd * 4 if field == "n_inner" and config.get(field) is None else _value(
            config, field)
        if not any(same_value(value, a) for a in allowed):
            problems.append((field, value, said))
    refuse_unsupported(where, problems)
    dropout = float(_value(config, "resid_pdrop"))
    notes = [f"{field}={_value(config, field)} differs from resid_pdrop={dropout}; tinylm uses "
             f"one dropout probability, {dropout} (dropout acts only in training)"
             for field in ("embd_pdrop", "attn_pdrop")
             if not same_value(float(_value(config, field)), dropout)]
    try:
        gpt = GPTConfig(vocab_size=_value(config, "vocab_size"),
                        block_size=_value(config, "n_positions"),
                        n_layer=_value(config, "n_layer"), n_head=_value(config, "n_head"),
                        n_embd=n_embd, dropout=dropout)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{where}: {e}") from e
    return gpt, notes


def hf_config_from_gpt(config: GPTConfig, dtype) -> dict:
    """GPTConfig -> a GPT-2 config.json that GPT2LMHeadModel builds the same network from."""
    V = config.vocab_size
    end_of_text = V - 1 if V == 50257 else None          # GPT-2's <|endoftext|> = 50256
    return {"architectures": [ARCHITECTURE], "model_type": MODEL_TYPE,
            "vocab_size": V, "n_positions": config.block_size, "n_embd": config.n_embd,
            "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": 4 * config.n_embd,
            "activation_function": "gelu_new", "layer_norm_epsilon": LAYER_NORM_EPS,
            "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
            "attn_pdrop": config.dropout, "initializer_range": 0.02,
            "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False, "add_cross_attention": False,
            "tie_word_embeddings": True, "use_cache": True,
            "bos_token_id": end_of_text, "eos_token_id": end_of_text,
            "dtype": numpy.dtype(dtype).name}


# -- tensors ------------------------------------------------------------------------------
def hf_name(name: str) -> str:
    """A tinylm parameter name -> its Hugging Face name: the prefix, and ".weight" after
    the two embedding tables (tinylm's wte is a Parameter, GPT-2's an nn.Embedding)."""
    return PREFIX + (f"{name}.weight" if name in EMBEDDINGS else name)


def hf_tensors(model: GPT, dtype=None) -> dict:
    """tinylm GPT -> {Hugging Face name: array} (no transposes; the tied lm_head is not
    written, as save_pretrained does not write it)."""
    return {hf_name(name): value if dtype is None else value.astype(dtype)
            for name, value in model.state_dict().items()}


def tinylm_tensors(tensors: dict, model: GPT, where: str) -> dict:
    """{Hugging Face name: array} -> {tinylm name: array} for ``model``, after checking
    names and shapes against the ones ``model`` expects."""
    own = _own_names(tensors)
    head = own.pop(HEAD, None)
    names = {hf_name(name): name for name, _ in model.named_parameters()}
    check_tensor_set(where, own, {hf: p.shape for hf, (_, p) in
                                  zip(names, model.named_parameters())})
    check_floating(where, own)
    if head is not None:
        _check_tied(head, own[hf_name("wte")], where)
    return {names[hf]: value for hf, value in own.items()}


def _own_names(tensors: dict) -> dict:
    """Every name spelled with the ``transformer.`` prefix; the causal-mask buffers dropped."""
    named = {}
    for name, value in tensors.items():
        if name.endswith(BUFFERS):
            continue
        named[name if name.startswith(PREFIX) or name == HEAD else PREFIX + name] = value
    return named


def _check_tied(head, wte, where: str) -> None:
    if head.shape != wte.shape or not numpy.array_equal(head, wte):
        raise UnsupportedConfigError(f"{where}: lm_head.weight differs from "
                                     "transformer.wte.weight: an untied output head, which "
                                     "tinylm's GPT (its head is wte) cannot hold.")


# -- the two directions -------------------------------------------------------------------
def gpt_from_hf(config: dict, tensors: dict, dtype="float32",
                where: str = "checkpoint") -> tuple[GPT, list]:
    """(config.json dict, {name: array}) -> (GPT in eval mode, notes)."""
    gpt_config, notes = gpt_config_from_hf(config, where)
    model = GPT(gpt_config).to(dtype=numpy.dtype(dtype))
    model.load_state_dict(tinylm_tensors(tensors, model, where))
    return model.eval(), notes


def load_gpt2(folder, dtype="float32") -> tuple[GPT, list]:
    """A Hugging Face GPT-2 directory -> (GPT in eval mode, notes)."""
    config, tensors = read_hf_dir(folder)
    return gpt_from_hf(config, tensors, dtype, where=str(folder))


def save_gpt2(model: GPT, folder, dtype=None):
    """Write ``model`` as a GPT2LMHeadModel checkpoint (config.json + model.safetensors) in
    ``dtype`` (default: the model's own) -> the folder."""
    if not isinstance(model, GPT):
        raise TypeError(f"save_gpt2 writes a tinylm GPT, not a {type(model).__name__}.")
    dtype = numpy.dtype(dtype or model.wte.dtype)
    return write_hf_dir(folder, hf_config_from_gpt(model.config, dtype),
                        hf_tensors(model, dtype))
