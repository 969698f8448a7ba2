"""BERT in Hugging Face format <-> tinylm's BERT (tinylm/models/bert.py), chapter 09.

    model, notes = load_bert(folder)              # BertForMaskedLM / BertForPreTraining -> BERT
    save_bert(model, folder)                      # BERT -> what BertForMaskedLM.from_pretrained reads

Hugging Face's BERT uses ``nn.Linear``, W [out, in] with y = x W^T + b; tinylm's ``Linear``
stores W [in, out] with y = x W + b. Every dense weight is therefore transposed ("T"), and
the three [D, D] projections query, key, value become the three column blocks of tinylm's
fused c_attn [D, 3D] (queries, keys, values, each cut into heads of D / n_head consecutive
columns, the order of both libraries):

    Hugging Face                                                   tinylm BERT            how
    bert.embeddings.word_embeddings.weight        [V, D]           wte                    =
    bert.embeddings.position_embeddings.weight    [T, D]           wpe                    =
    bert.embeddings.token_type_embeddings.weight  [S, D]           wtt                    =
    bert.embeddings.LayerNorm.{weight,bias}       [D]              ln_emb.*               =
    bert.encoder.layer.{i}.attention.self.query.weight [D, D]      h.{i}.attn.c_attn.weight[:, 0:D]    T
    bert.encoder.layer.{i}.attention.self.key.weight   [D, D]      h.{i}.attn.c_attn.weight[:, D:2D]   T
    bert.encoder.layer.{i}.attention.self.value.weight [D, D]      h.{i}.attn.c_attn.weight[:, 2D:3D]  T
    bert.encoder.layer.{i}.attention.self.{query,key,value}.bias   h.{i}.attn.c_attn.bias[0:D | D:2D | 2D:3D]
    bert.encoder.layer.{i}.attention.output.dense.*  [D, D]        h.{i}.attn.c_proj.*    T
    bert.encoder.layer.{i}.attention.output.LayerNorm.*            h.{i}.ln_1.*           =
    bert.encoder.layer.{i}.intermediate.dense.*   [4D, D]          h.{i}.mlp.c_fc.*       T
    bert.encoder.layer.{i}.output.dense.*         [D, 4D]          h.{i}.mlp.c_proj.*     T
    bert.encoder.layer.{i}.output.LayerNorm.*                      h.{i}.ln_2.*           =
    bert.pooler.dense.*                           [D, D]           pooler.*               T
    cls.predictions.transform.dense.*             [D, D]           mlm_transform.*        T
    cls.predictions.transform.LayerNorm.*                          ln_mlm.*               =
    cls.predictions.bias                          [V]              mlm_bias               =
    cls.predictions.decoder.{weight,bias}         (tied: word_embeddings and cls.predictions.bias)
    cls.seq_relationship.*                        [2, D]           nsp_head.*             T

(T applies to weights; biases are copied as they are.)

**The pooler and the NSP head.** ``BertForMaskedLM`` has no pooler (transformers builds it
with ``add_pooling_layer=False``); ``BertForPreTraining`` has the pooler and the NSP head
``cls.seq_relationship``. Export writes the pooler always, so a round trip through Hugging
Face keeps it and ``BertModel.from_pretrained`` uses it (``BertForMaskedLM`` reports it as
an unused tensor and ignores it), and names the architecture ``BertForPreTraining`` when
the model has an NSP head (``next_sentence``), else ``BertForMaskedLM``. Import builds the
NSP head when the file has ``cls.seq_relationship``; a file without a pooler (every
``BertForMaskedLM`` that transformers saved) leaves tinylm's pooler at its fresh
initialisation, N(0, 0.02^2) and zero bias, and says so in the notes -- fine-tune it
("first" pooling) or pool by "mean".

The configuration (Hugging Face's default where config.json omits a field):

    hidden_size -> n_embd, num_hidden_layers -> n_layer, num_attention_heads -> n_head,
    max_position_embeddings -> block_size, vocab_size, type_vocab_size as they are
    hidden_act            gelu (exact erf form) -> gelu "none"; gelu_new / gelu_pytorch_tanh -> "tanh"
    layer_norm_eps        -> layer_norm_eps (any positive value; BERT's is 1e-12)
    intermediate_size     4 * hidden_size only (tinylm's MLP is D -> 4D -> D)
    hidden_dropout_prob   -> dropout (one probability in tinylm; a different
                          attention_probs_dropout_prob is reported in the notes)
    position_embedding_type  absolute only; is_decoder, add_cross_attention false;
                          tie_word_embeddings true

tinylm's pre-LN variant (``norm_first=True``) has no Hugging Face BERT counterpart (HF's BERT
is post-LN) and is refused on export.
"""

from __future__ import annotations

import numpy

from tinylm.interop.checks import (UnsupportedConfigError, architecture_problems,
                                   check_floating, check_tensor_set, config_value,
                                   refuse_unsupported, same_value)
from tinylm.interop.hf_format import read_hf_dir, write_hf_dir
from tinylm.models.bert import BERT, BERTConfig

MODEL_TYPE = "bert"
MLM_ARCHITECTURE, PRETRAINING_ARCHITECTURE = "BertForMaskedLM", "BertForPreTraining"
READABLE_ARCHITECTURES = (MLM_ARCHITECTURE, PRETRAINING_ARCHITECTURE)
GELU_FORMS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
HF_GELU = {"none": "gelu", "tanh": "gelu_new"}
NSP_WEIGHT = "cls.seq_relationship.weight"
POOLER = ("bert.pooler.dense.weight", "bert.pooler.dense.bias")
BUFFERS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")
TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}
BARE_PREFIXES = ("embeddings.", "encoder.", "pooler.")      # BertModel's names lack "bert."

HF_DEFAULTS = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
               "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
               "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
               "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
               "position_embedding_type": "absolute", "is_decoder": False,
               "add_cross_attention": False, "tie_word_embeddings": True}


# -- the mapping table ----------------------------------------------------------------------
def _dense(hf: str, ours: str) -> list:
    """A Linear: weight transposed, bias copied."""
    return [(f"{hf}.weight", f"{ours}.weight", "T"), (f"{hf}.bias", f"{ours}.bias", "=")]


def _norm(hf: str, ours: str) -> list:
    return [(f"{hf}.weight", f"{ours}.weight", "="), (f"{hf}.bias", f"{ours}.bias", "=")]


def _layer(i: int) -> list:
    hf, ours = f"bert.encoder.layer.{i}", f"h.{i}"
    qkv = [(f"{hf}.attention.self.{part}.{kind}", f"{ours}.attn.c_attn.{kind}", j)
           for j, part in enumerate(("query", "key", "value")) for kind in ("weight", "bias")]
    return [*qkv, *_dense(f"{hf}.attention.output.dense", f"{ours}.attn.c_proj"),
            *_norm(f"{hf}.attention.output.LayerNorm", f"{ours}.ln_1"),
            *_dense(f"{hf}.intermediate.dense", f"{ours}.mlp.c_fc"),
            *_dense(f"{hf}.output.dense", f"{ours}.mlp.c_proj"),
            *_norm(f"{hf}.output.LayerNorm", f"{ours}.ln_2")]


def mapping(config: BERTConfig) -> list:
    """[(Hugging Face name, tinylm name, how)], how "=" (copied), "T" (transposed) or
    0 | 1 | 2 (the query | key | value block of c_attn, transposed if a weight)."""
    table = [("bert.embeddings.word_embeddings.weight", "wte", "="),
             ("bert.embeddings.position_embeddings.weight", "wpe", "="),
             ("bert.embeddings.token_type_embeddings.weight", "wtt", "="),
             *_norm("bert.embeddings.LayerNorm", "ln_emb")]
    for i in range(config.n_layer):
        table += _layer(i)
    table += [*_dense("bert.pooler.dense", "pooler"),
              *_dense("cls.predictions.transform.dense", "mlm_transform"),
              *_norm("cls.predictions.transform.LayerNorm", "ln_mlm"),
              ("cls.predictions.bias", "mlm_bias", "=")]
    if config.next_sentence:
        table += _dense("cls.seq_relationship", "nsp_head")
    return table


# -- configuration --------------------------------------------------------------------------
def _value(config: dict, field: str):
    return config_value(config, field, HF_DEFAULTS[field])


def check_architecture(config: dict, where: str) -> None:
    refuse_unsupported(where, architecture_problems(config, MODEL_TYPE, READABLE_ARCHITECTURES,
                                                    "the masked-LM head is needed"))


def bert_config_from_hf(config: dict, next_sentence: bool,
                        where: str = "config.json") -> tuple[BERTConfig, list]:
    """A BERT config.json -> (BERTConfig, notes)."""
    check_architecture(config, where)
    D = _value(config, "hidden_size")
    wanted = {"hidden_act": (tuple(GELU_FORMS), f"one of {list(GELU_FORMS)}"),
              "intermediate_size": ((4 * D,), f"4 * hidden_size = {4 * D}"),
              "position_embedding_type": (("absolute",), "'absolute' (learned positions)"),
              "is_decoder": ((False,), "false: BERT is an encoder"),
              "add_cross_attention": ((False,), "false"),
              "tie_word_embeddings": ((True,), "true: the MLM decoder is word_embeddings")}
    problems = [(field, _value(config, field), said) for field, (allowed, said) in wanted.items()
                if not any(same_value(_value(config, field), a) for a in allowed)]
    refuse_unsupported(where, problems)
    dropout = float(_value(config, "hidden_dropout_prob"))
    attn = float(_value(config, "attention_probs_dropout_prob"))
    notes = [] if same_value(attn, dropout) else [
        f"attention_probs_dropout_prob={attn} differs from hidden_dropout_prob={dropout}; "
        f"tinylm uses one dropout probability, {dropout} (dropout acts only in training)"]
    try:
        bert = BERTConfig(vocab_size=_value(config, "vocab_size"),
                          block_size=_value(config, "max_position_embeddings"),
                          n_layer=_value(config, "num_hidden_layers"),
                          n_head=_value(config, "num_attention_heads"), n_embd=D,
                          type_vocab_size=_value(config, "type_vocab_size"), dropout=dropout,
                          gelu=GELU_FORMS[_value(config, "hidden_act")],
                          next_sentence=next_sentence,
                          layer_norm_eps=float(_value(config, "layer_norm_eps")))
    except (TypeError, ValueError) as e:
        raise type(e)(f"{where}: {e}") from e
    return bert, notes


def hf_config_from_bert(config: BERTConfig, dtype) -> dict:
    """BERTConfig -> a config.json that BertForMaskedLM (or BertForPreTraining) builds the
    same network from."""
    if config.norm_first:
        raise UnsupportedConfigError(
            "this BERT is pre-LN (norm_first=True, with a final ln_f); Hugging Face's BERT is "
            "post-LN, so no BERT checkpoint computes the same function. Export a post-LN "
            "model (norm_first=False, the default).")
    D = config.n_embd
    architecture = PRETRAINING_ARCHITECTURE if config.next_sentence else MLM_ARCHITECTURE
    return {"architectures": [architecture], "model_type": MODEL_TYPE,
            "vocab_size": config.vocab_size, "hidden_size": D,
            "num_hidden_layers": config.n_layer, "num_attention_heads": config.n_head,
            "intermediate_size": 4 * D, "hidden_act": HF_GELU[config.gelu],
            "hidden_dropout_prob": config.dropout,
            "attention_probs_dropout_prob": config.dropout,
            "max_position_embeddings": config.block_size,
            "type_vocab_size": config.type_vocab_size, "initializer_range": 0.02,
            "layer_norm_eps": config.layer_norm_eps, "pad_token_id": 0,
            "position_embedding_type": "absolute", "is_decoder": False,
            "add_cross_attention": False, "tie_word_embeddings": True,
            "dtype": numpy.dtype(dtype).name}


# -- tensors --------------------------------------------------------------------------------
def hf_tensors(model: BERT, dtype=None) -> dict:
    """tinylm BERT -> {Hugging Face name: array} by the table (the tied decoder not written,
    as save_pretrained does not write it)."""
    state = model.state_dict()
    D = model.config.n_embd
    out = {}
    for hf, ours, how in mapping(model.config):
        value = state[ours]
        if how == "T":
            value = value.T                                           # [in, out] -> [out, in]
        elif how in (0, 1, 2):
            block = slice(how * D, (how + 1) * D)
            value = value[:, block].T if value.ndim == 2 else value[block]   # [D, D] / [D]
        out[hf] = numpy.ascontiguousarray(value if dtype is None else value.astype(dtype))
    return out


def _own_names(tensors: dict) -> dict:
    """Names spelled as BertForPreTraining does: "bert." added to a BertModel's names,
    TensorFlow-era LayerNorm.gamma/beta renamed weight/bias, buffers dropped."""
    named = {}
    for name, value in tensors.items():
        if name.startswith(BARE_PREFIXES):
            name = "bert." + name
        if name.endswith(("LayerNorm.gamma", "LayerNorm.beta")):
            name = name[:-5] + "weight" if name.endswith("gamma") else name[:-4] + "bias"
        if name not in BUFFERS:
            named[name] = value
    return named


def _check_tied(named: dict, where: str) -> None:
    """A stored decoder must be the tied one: equal to what it is tied to."""
    for name, source in TIED.items():
        if name in named:
            value = named.pop(name)
            if source in named and not numpy.array_equal(value, named[source]):
                raise UnsupportedConfigError(
                    f"{where}: {name} differs from {source}: an untied MLM decoder, which "
                    "tinylm's BERT (its decoder is wte, its bias mlm_bias) cannot hold.")


def tinylm_tensors(tensors: dict, model: BERT, where: str) -> tuple[dict, list]:
    """{Hugging Face name: array} -> ({tinylm name: array}, notes), after checking names and
    shapes against the ones ``model`` expects. A missing pooler keeps model's own."""
    named = _own_names(tensors)
    _check_tied(named, where)
    expected = {name: value.shape for name, value in hf_tensors(model).items()}
    notes = []
    if not any(name in named for name in POOLER):
        notes.append("the checkpoint has no pooler (bert.pooler.dense: BertForMaskedLM has "
                     "none); tinylm's pooler keeps its fresh initialisation N(0, 0.02^2)")
        for name in POOLER:
            expected.pop(name)
    check_tensor_set(where, named, expected)
    check_floating(where, named)
    state = model.state_dict()
    for hf, ours, how in mapping(model.config):
        if hf not in named:
            continue                                                  # the pooler, above
        value = named[hf]
        if how == "T":
            state[ours] = value.T
        elif how in (0, 1, 2):
            D = model.config.n_embd
            block = slice(how * D, (how + 1) * D)
            if value.ndim == 2:
                state[ours][:, block] = value.T                      # [D, 3D] column block
            else:
                state[ours][block] = value
        else:
            state[ours] = value
    return state, notes


# -- the two directions ---------------------------------------------------------------------
def bert_from_hf(config: dict, tensors: dict, dtype="float32",
                 where: str = "checkpoint") -> tuple[BERT, list]:
    """(config.json dict, {name: array}) -> (BERT in eval mode, notes)."""
    next_sentence = (NSP_WEIGHT in tensors
                     or PRETRAINING_ARCHITECTURE in (config.get("architectures") or []))
    bert_config, notes = bert_config_from_hf(config, next_sentence, where)
    model = BERT(bert_config).to(dtype=numpy.dtype(dtype))
    state, tensor_notes = tinylm_tensors(tensors, model, where)
    model.load_state_dict(state)
    return model.eval(), notes + tensor_notes


def load_bert(folder, dtype="float32") -> tuple[BERT, list]:
    """A Hugging Face BERT directory -> (BERT in eval mode, notes)."""
    config, tensors = read_hf_dir(folder)
    return bert_from_hf(config, tensors, dtype, where=str(folder))


def save_bert(model: BERT, folder, dtype=None):
    """Write ``model`` as a BertForMaskedLM (or, with an NSP head, BertForPreTraining)
    checkpoint in ``dtype`` (default: the model's own) -> the folder."""
    if not isinstance(model, BERT):
        raise TypeError(f"save_bert writes a tinylm BERT, not a {type(model).__name__}.")
    dtype = numpy.dtype(dtype or model.wte.dtype)
    return write_hf_dir(folder, hf_config_from_bert(model.config, dtype),
                        hf_tensors(model, dtype))
