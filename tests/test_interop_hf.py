"""Hugging Face checkpoints in and out (tinylm/interop/), with transformers as the oracle.

* A random GPT2LMHeadModel saved by ``save_pretrained`` loads into tinylm's GPT with the
  same logits and loss (float64 within 1e-9, float32 within 1e-5, max abs difference);
  a tinylm GPT exported loads with ``GPT2LMHeadModel.from_pretrained`` with the same
  logits; tinylm -> HF -> tinylm and HF -> tinylm -> HF give back equal arrays.
* The same for BERT: BertForMaskedLM (padding mask and two segments: MLM logits and loss)
  and BertForPreTraining (the pooler and the NSP head too).
* Bad input: an unsupported architecture or config value (every field named), a tensor
  of the wrong shape (named, with both shapes), missing and unexpected tensors, an untied
  head, a pickle-only folder; BF16 tensors are widened exactly.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinylm.interop import HFFormatError, load_hf, save_hf
from tinylm.interop.bert import load_bert, save_bert
from tinylm.interop.checks import TensorMismatchError, UnsupportedConfigError
from tinylm.interop.gpt2 import load_gpt2, save_gpt2
from tinylm.interop.hf_format import read_tensors
from tinylm.models.bert import BERT, BERTConfig
from tinylm.models.gpt import GPT, GPTConfig

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

GPT2_SIZES = dict(n_embd=32, n_layer=2, n_head=4, vocab_size=97, n_positions=16)
BERT_SIZES = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=128, max_position_embeddings=16)
TOL = {np.float64: 1e-9, np.float32: 1e-5}          # max |tinylm - transformers|
DTYPES = [np.float64, np.float32]


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _same_config(theirs, ours) -> bool:
    """Equal but for the seed, which only drew the initial weights (config.json has none)."""
    return dataclasses.replace(theirs, seed=ours.seed) == ours


def _torch_dtype(torch, dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


# -- GPT-2 ------------------------------------------------------------------------------------
def _hf_gpt2(torch, dtype, **extra):
    torch.manual_seed(0)
    config = transformers.GPT2Config(**GPT2_SIZES, bos_token_id=0, eos_token_id=0, **extra)
    return transformers.GPT2LMHeadModel(config).to(_torch_dtype(torch, dtype)).eval()


def _ids(rng, B=3, T=16, V=97):
    return rng.integers(0, V, size=(B, T))


def _shifted(ids):
    """HF's causal-LM loss predicts ids[:, 1:] from every position but the last."""
    return np.concatenate([ids[:, 1:], np.full((ids.shape[0], 1), -100)], axis=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_transformers_gpt2_loads_with_the_same_logits_and_loss(dtype, torch, rng, tmp_path):
    hf = _hf_gpt2(torch, dtype)
    hf.save_pretrained(tmp_path)
    model, notes = load_gpt2(tmp_path, dtype=dtype)
    ids = _ids(rng)
    logits, loss = model.forward(ids, _shifted(ids))
    with torch.no_grad():
        out = hf(torch.tensor(ids), labels=torch.tensor(ids))
        V = GPT2_SIZES["vocab_size"]                 # HF's own loss upcasts only to float32:
        exact = torch.nn.functional.cross_entropy(   # the same loss in the model's dtype
            out.logits[:, :-1].reshape(-1, V), torch.tensor(ids[:, 1:]).reshape(-1))
    assert notes == [] and logits.dtype == dtype
    assert _max_diff(logits, out.logits.numpy()) <= TOL[dtype]
    assert abs(float(loss) - exact.item()) <= TOL[dtype]
    assert abs(float(loss) - out.loss.item()) <= 1e-5


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_exported_gpt_loads_in_transformers_with_the_same_logits(dtype, torch, rng,
                                                                    tmp_path):
    model = GPT(GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=4, n_embd=32,
                          seed=3)).to(dtype=dtype).eval()
    save_gpt2(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, dtype=_torch_dtype(torch, dtype))
    ids = _ids(rng)
    with torch.no_grad():
        theirs = hf.eval()(torch.tensor(ids)).logits.numpy()
    assert _max_diff(model.forward(ids)[0], theirs) <= TOL[dtype]


def test_gpt_round_trips_through_the_hf_format_exactly(tmp_path):
    model = GPT(GPTConfig(vocab_size=50, block_size=12, n_layer=3, n_head=2, n_embd=16,
                          dropout=0.1, seed=7))
    save_hf(model, tmp_path)
    back, family, notes = load_hf(tmp_path)
    assert family == "gpt" and notes == [] and _same_config(back.config, model.config)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)


def test_hf_gpt2_tensors_come_back_unchanged(torch, tmp_path):
    _hf_gpt2(torch, np.float32).save_pretrained(tmp_path / "hf")
    model, _ = load_gpt2(tmp_path / "hf")
    save_gpt2(model, tmp_path / "again")
    original = load_file(tmp_path / "hf" / "model.safetensors")
    again = load_file(tmp_path / "again" / "model.safetensors")
    assert sorted(again) == sorted(original)
    for name, value in original.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)


def test_openai_names_buffers_and_a_tied_head_are_read(torch, rng, tmp_path):
    """OpenAI's upload ("gpt2" on the Hub) names tensors without ``transformer.`` and keeps
    the causal-mask buffers attn.bias; some files store the tied lm_head."""
    hf = _hf_gpt2(torch, np.float32)
    hf.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    renamed = {name.removeprefix("transformer."): value for name, value in tensors.items()}
    for i in range(GPT2_SIZES["n_layer"]):
        renamed[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 16, 16), np.float32))
    renamed["lm_head.weight"] = renamed["wte.weight"].copy()
    save_file(renamed, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model, _ = load_gpt2(tmp_path)
    ids = _ids(rng)
    with torch.no_grad():
        theirs = hf(torch.tensor(ids)).logits.numpy()
    assert _max_diff(model.forward(ids)[0], theirs) <= 1e-5


def test_greedy_decoding_with_the_kv_cache_matches_transformers(torch, rng, tmp_path):
    from tinylm.generate import generate

    hf = _hf_gpt2(torch, np.float64)
    hf.save_pretrained(tmp_path)
    model, _ = load_gpt2(tmp_path, dtype=np.float64)
    prompt = _ids(rng, B=1, T=4)
    ours = generate(model, prompt, 8, rng, greedy=True)
    with torch.no_grad():
        theirs = hf.generate(torch.tensor(prompt), max_new_tokens=8, do_sample=False,
                             pad_token_id=0)
    np.testing.assert_array_equal(np.asarray(ours)[0], theirs.numpy()[0, 4:])


# -- BERT -------------------------------------------------------------------------------------
def _hf_bert(torch, cls, dtype, **extra):
    torch.manual_seed(0)
    config = transformers.BertConfig(**BERT_SIZES, **extra)
    return cls(config).to(_torch_dtype(torch, dtype)).eval()


def _bert_batch(rng, B=3, T=12, V=97):
    """ids (row 1 padded after 7 tokens), segments 0 then 1, mask, MLM targets, NSP labels."""
    ids = rng.integers(5, V, size=(B, T))
    mask = np.ones((B, T), dtype=bool)
    mask[1, 7:] = False
    ids[~mask] = 0
    segments = (np.arange(T)[None, :] >= 5).astype(np.int64).repeat(B, axis=0)
    targets = np.full_like(ids, -100)
    for b, t in [(0, 2), (0, 9), (1, 3), (2, 6), (2, 11)]:
        targets[b, t] = rng.integers(5, V)
    return ids, segments, mask, targets, rng.integers(0, 2, size=B)


def _hf_inputs(torch, ids, segments, mask):
    return dict(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(segments),
                attention_mask=torch.tensor(mask.astype(np.int64)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_transformers_bert_mlm_loads_with_the_same_logits_and_loss(dtype, torch, rng,
                                                                     tmp_path):
    hf = _hf_bert(torch, transformers.BertForMaskedLM, dtype)
    hf.save_pretrained(tmp_path)
    model, notes = load_bert(tmp_path, dtype=dtype)
    ids, segments, mask, targets, _ = _bert_batch(rng)
    logits, _ = model.forward(ids, segments=segments, mask=mask)              # [B, T, V]
    _, loss = model.forward(ids, targets, segments=segments, mask=mask)
    with torch.no_grad():
        out = hf(**_hf_inputs(torch, ids, segments, mask), labels=torch.tensor(targets))
    assert any("pooler" in note for note in notes)                     # BertForMaskedLM has none
    assert not model.config.next_sentence and model.config.gelu == "none"
    assert _max_diff(logits, out.logits.numpy()) <= TOL[dtype]
    assert abs(float(loss) - out.loss.item()) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_transformers_bert_for_pretraining_loads_pooler_and_nsp_head(dtype, torch, rng,
                                                                       tmp_path):
    hf = _hf_bert(torch, transformers.BertForPreTraining, dtype, hidden_act="gelu_new",
                  layer_norm_eps=1e-7)
    hf.save_pretrained(tmp_path)
    model, notes = load_bert(tmp_path, dtype=dtype)
    ids, segments, mask, targets, nsp = _bert_batch(rng)
    logits, _ = model.forward(ids, segments=segments, mask=mask)
    _, loss = model.forward(ids, targets, segments=segments, mask=mask, nsp_targets=nsp)
    with torch.no_grad():
        out = hf(**_hf_inputs(torch, ids, segments, mask), labels=torch.tensor(targets),
                 next_sentence_label=torch.tensor(nsp))
    assert notes == [] and model.config.next_sentence and model.config.gelu == "tanh"
    assert model.config.layer_norm_eps == 1e-7
    assert _max_diff(logits, out.prediction_logits.numpy()) <= TOL[dtype]
    assert _max_diff(model.nsp_logits, out.seq_relationship_logits.numpy()) <= TOL[dtype]
    assert abs(float(loss) - out.loss.item()) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("next_sentence", [False, True], ids=["mlm", "mlm+nsp"])
def test_an_exported_bert_loads_in_transformers_with_the_same_logits(next_sentence, dtype,
                                                                     torch, rng, tmp_path):
    model = BERT(BERTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=4, n_embd=32,
                            next_sentence=next_sentence, seed=5)).to(dtype=dtype).eval()
    save_bert(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    name = "BertForPreTraining" if next_sentence else "BertForMaskedLM"
    assert config["architectures"] == [name] and config["model_type"] == "bert"
    hf = getattr(transformers, name).from_pretrained(tmp_path, dtype=_torch_dtype(torch, dtype))
    ids, segments, mask, _, _ = _bert_batch(rng)
    with torch.no_grad():
        out = hf.eval()(**_hf_inputs(torch, ids, segments, mask))
    theirs = out.prediction_logits if next_sentence else out.logits
    assert _max_diff(model.forward(ids, segments=segments, mask=mask)[0],
                     theirs.numpy()) <= TOL[dtype]
    if next_sentence:
        ours = model.nsp_head.forward(model.features(ids, mask, "first", segments))
        assert _max_diff(ours, out.seq_relationship_logits.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("next_sentence", [False, True], ids=["mlm", "mlm+nsp"])
def test_bert_round_trips_through_the_hf_format_exactly(next_sentence, tmp_path):
    model = BERT(BERTConfig(vocab_size=40, block_size=10, n_layer=2, n_head=2, n_embd=16,
                            gelu="tanh", next_sentence=next_sentence, seed=2))
    save_hf(model, tmp_path)
    back, family, notes = load_hf(tmp_path)
    assert family == "bert" and notes == [] and _same_config(back.config, model.config)
    for name, value in model.state_dict().items():           # the pooler included
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)


def test_hf_bert_tensors_come_back_unchanged(torch, tmp_path):
    _hf_bert(torch, transformers.BertForPreTraining, np.float32).save_pretrained(tmp_path / "hf")
    save_bert(load_bert(tmp_path / "hf")[0], tmp_path / "again")
    original = load_file(tmp_path / "hf" / "model.safetensors")
    again = load_file(tmp_path / "again" / "model.safetensors")
    assert sorted(again) == sorted(original)
    for name, value in original.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)


def test_a_pre_ln_bert_is_not_exported(tmp_path):
    model = BERT(BERTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8,
                            norm_first=True))
    with pytest.raises(UnsupportedConfigError, match="norm_first=True"):
        save_bert(model, tmp_path)
    assert not (tmp_path / "config.json").exists()


# -- bad input --------------------------------------------------------------------------------
@pytest.fixture
def gpt2_dir(tmp_path):
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=8))
    return save_gpt2(model, tmp_path / "gpt2")


def _edit_config(folder, **changes):
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _edit_tensors(folder, edit):
    path = folder / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def test_unsupported_config_values_are_all_named(gpt2_dir):
    _edit_config(gpt2_dir, activation_function="relu", layer_norm_epsilon=1e-6,
                 add_cross_attention=True)
    with pytest.raises(UnsupportedConfigError) as error:
        load_gpt2(gpt2_dir)
    message = str(error.value)
    for field in ("activation_function='relu'", "layer_norm_epsilon=1e-06",
                  "add_cross_attention=True"):
        assert field in message


def test_the_erf_gelu_and_a_wide_mlp_are_refused_for_gpt2(gpt2_dir):
    _edit_config(gpt2_dir, activation_function="gelu", n_inner=64)
    with pytest.raises(UnsupportedConfigError, match=r"activation_function='gelu'.*n_inner=64"):
        load_gpt2(gpt2_dir)


@pytest.mark.parametrize("changes, named", [
    ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, "model_type='llama'"),
    ({"architectures": ["GPT2ForSequenceClassification"]}, "GPT2ForSequenceClassification"),
])
def test_an_unsupported_architecture_is_named(gpt2_dir, changes, named):
    _edit_config(gpt2_dir, **changes)
    with pytest.raises(HFFormatError, match=named):
        load_hf(gpt2_dir)


def test_unsupported_bert_config_values_are_named(tmp_path):
    save_bert(BERT(BERTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=8)),
              tmp_path)
    _edit_config(tmp_path, intermediate_size=40, hidden_act="relu", is_decoder=True,
                 position_embedding_type="relative_key")
    with pytest.raises(UnsupportedConfigError) as error:
        load_bert(tmp_path)
    for field in ("intermediate_size=40", "hidden_act='relu'", "is_decoder=True",
                  "position_embedding_type='relative_key'"):
        assert field in str(error.value)


def test_a_tensor_of_the_wrong_shape_is_named_with_both_shapes(gpt2_dir):
    def widen(tensors):
        tensors["transformer.h.1.mlp.c_fc.weight"] = np.zeros((8, 33), np.float32)
    _edit_tensors(gpt2_dir, widen)
    with pytest.raises(TensorMismatchError,
                       match=r"transformer\.h\.1\.mlp\.c_fc\.weight has shape \(8, 33\), "
                             r"expected \(8, 32\)"):
        load_gpt2(gpt2_dir)


def test_missing_and_unexpected_tensors_are_named(gpt2_dir):
    def drop_and_add(tensors):
        del tensors["transformer.h.0.ln_2.bias"]
        tensors["transformer.h.0.attn.q_attn.weight"] = np.zeros((8, 8), np.float32)
    _edit_tensors(gpt2_dir, drop_and_add)
    with pytest.raises(TensorMismatchError) as error:
        load_gpt2(gpt2_dir)
    assert "missing tensors [transformer.h.0.ln_2.bias]" in str(error.value)
    assert "unexpected tensors [transformer.h.0.attn.q_attn.weight]" in str(error.value)


def test_a_missing_bert_tensor_is_named(tmp_path):
    save_bert(BERT(BERTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=8)),
              tmp_path)
    _edit_tensors(tmp_path, lambda t: t.pop("bert.encoder.layer.0.attention.self.key.weight"))
    with pytest.raises(TensorMismatchError,
                       match=r"missing tensors \[bert\.encoder\.layer\.0\.attention\.self\.key"):
        load_bert(tmp_path)


def test_an_untied_head_is_refused(gpt2_dir):
    def untie(tensors):
        tensors["lm_head.weight"] = tensors["transformer.wte.weight"] + 1.0
    _edit_tensors(gpt2_dir, untie)
    with pytest.raises(UnsupportedConfigError, match="untied output head"):
        load_gpt2(gpt2_dir)


def test_a_pickle_only_folder_is_refused_with_the_fix(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(HFFormatError, match="safe_serialization=True"):
        load_hf(tmp_path)


def test_a_missing_folder_and_a_truncated_file_are_named(gpt2_dir, tmp_path):
    with pytest.raises(HFFormatError, match="not a directory"):
        load_hf(tmp_path / "nowhere")
    weights = gpt2_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(HFFormatError, match="model.safetensors cannot be read"):
        load_hf(gpt2_dir)


def test_bfloat16_tensors_are_widened_exactly(torch, tmp_path):
    from safetensors.torch import save_file as save_torch

    value = torch.randn(3, 5).to(torch.bfloat16)
    save_torch({"w": value, "b": torch.arange(4.0)}, str(tmp_path / "x.safetensors"))
    tensors = read_tensors(tmp_path / "x.safetensors")
    assert tensors["w"].dtype == np.float32
    np.testing.assert_array_equal(tensors["w"], value.float().numpy())
    np.testing.assert_array_equal(tensors["b"], np.arange(4.0, dtype=np.float32))


def test_a_sharded_checkpoint_reads_as_one(gpt2_dir):
    """Large models come as shards and an index {"weight_map": {name: file}}."""
    tensors = load_file(gpt2_dir / "model.safetensors")
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:7],
              "model-00002-of-00002.safetensors": names[7:]}
    for file, part in shards.items():
        save_file({n: tensors[n] for n in part}, gpt2_dir / file, metadata={"format": "pt"})
    (gpt2_dir / "model.safetensors").unlink()
    (gpt2_dir / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {n: file for file, part in shards.items() for n in part}}))
    model, _ = load_gpt2(gpt2_dir)
    for name, value in model.state_dict().items():
        hf = "transformer." + (f"{name}.weight" if name in ("wte", "wpe") else name)
        np.testing.assert_array_equal(value, tensors[hf], err_msg=name)
