"""``tinylm import-hf DIR RUN`` and ``tinylm export-hf RUN DIR`` (tinylm/commands/), with
transformers as the oracle.

* A random GPT2LMHeadModel imported with a character tokenizer becomes a run that
  ``tinylm generate`` continues exactly as transformers' greedy decoding does and that
  ``tinylm eval`` scores; exported again, ``from_pretrained`` gives the run's logits, and
  the folder re-imports without ``--tokenizer`` (the tokenizer travels with it).
* A ``tinylm pretrain bert`` run exported loads in BertForMaskedLM with its logits;
  imported back it is a pre-training run that ``finetune`` starts from, with equal arrays.
* Bad input: no tokenizer, a tokenizer of another size, a RUN or DIR that already holds a
  checkpoint, a run of a family Hugging Face does not share.
"""

from __future__ import annotations

import numpy as np
import pytest

from cli_helpers import run_cli
from tinylm.checkpoint import load_checkpoint, save_checkpoint, split_prefix
from tinylm.commands.export_hf import load_run_model
from tinylm.data.classification import TextClassificationTask
from tinylm.data.datasets import load_text
from tinylm.data.tokenizers import CharTokenizer
from tinylm.train import finetune_run, pretrain_run
from tinylm.train.finetune_run import finetune, finetune_settings
from tinylm.train.pretrain_run import pretrain_settings, train_pretrain
from tinylm.train.restore import load_trained

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_torch_thread")
WORDS = "the a cat dog sat ran on under mat log red big small quick slow".split()


@pytest.fixture
def chars(tmp_path):
    """The character tokenizer of The Time Machine, saved as tinylm JSON."""
    tokenizer = CharTokenizer.from_text(load_text("timemachine"))
    tokenizer.save(tmp_path / "chars.json")
    return tokenizer


@pytest.fixture
def hf_gpt2(torch, chars, tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=24,
                                     vocab_size=chars.vocab_size, bos_token_id=0,
                                     eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(tmp_path / "hf")
    return model


def _import(tmp_path, capsys, *extra, source="hf", run="run"):
    return run_cli(["import-hf", str(tmp_path / source), str(tmp_path / run), *extra], capsys)


def test_an_imported_gpt2_generates_as_transformers_does_and_evaluates(hf_gpt2, chars, torch,
                                                                      tmp_path, capsys):
    status, out, err = _import(tmp_path, capsys, "--tokenizer", str(tmp_path / "chars.json"),
                               "--dataset", "timemachine")
    assert status == 0 and "imported gpt" in out, err
    prompt = "The Time"            # + 12 new tokens: within n_positions=24 (HF does not slide)
    status, out, err = run_cli(["generate", str(tmp_path / "run"), "--prompt", prompt,
                                "--max-new-tokens", "12", "--greedy"], capsys)
    assert status == 0, err
    with torch.no_grad():
        ids = hf_gpt2.generate(torch.tensor(chars.encode(prompt)[None]), max_new_tokens=12,
                               do_sample=False, pad_token_id=0)
    assert out.rstrip("\n") == prompt + chars.decode(ids[0, len(prompt):].tolist())
    status, out, err = run_cli(["eval", str(tmp_path / "run")], capsys)
    assert status == 0 and "val: loss" in out, err
    loss = float(out.split("loss ")[1].split()[0])
    assert abs(loss - np.log(chars.vocab_size)) < 0.5      # a random model: about log V


def _gpt2_tokenizer_or_skip():
    from tinylm.data.tokenizers import tokenizer_from_dict

    try:
        return tokenizer_from_dict({"type": "openai_bpe", "name": "gpt2"})
    except ValueError:
        pytest.skip("the GPT-2 tokenizer (tinylm/data/openai_bpe.py) is not registered")


def test_a_gpt2_of_gpt2s_vocabulary_gets_the_gpt2_tokenizer(torch, tmp_path, capsys):
    """No --tokenizer: 50,257 tokens is GPT-2's vocabulary, so generate works end to end."""
    gpt2 = _gpt2_tokenizer_or_skip()
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=32)
    hf = transformers.GPT2LMHeadModel(config).eval()
    hf.save_pretrained(tmp_path / "hf")
    status, _, err = _import(tmp_path, capsys)
    assert status == 0, err
    prompt = "This is some text"
    status, out, err = run_cli(["generate", str(tmp_path / "run"), "--prompt", prompt,
                                "--max-new-tokens", "6", "--greedy"], capsys)
    assert status == 0, err
    ids = gpt2.encode(prompt)
    with torch.no_grad():
        theirs = hf.generate(torch.tensor(ids[None]), max_new_tokens=6, do_sample=False,
                             pad_token_id=50256)
    assert out.rstrip("\n") == prompt + gpt2.decode(theirs[0, len(ids):].tolist())


def test_a_gpt_run_exports_with_its_logits_and_reimports_with_its_tokenizer(hf_gpt2, torch,
                                                                           tmp_path, capsys):
    _import(tmp_path, capsys, "--tokenizer", str(tmp_path / "chars.json"))
    status, out, err = run_cli(["export-hf", str(tmp_path / "run"), str(tmp_path / "out")],
                               capsys)
    assert status == 0 and "as GPT2LMHeadModel" in out, err
    model, tokenizer, _ = load_trained(tmp_path / "run")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "out").eval()
    ids = np.random.default_rng(0).integers(0, tokenizer.vocab_size, size=(2, 24))
    with torch.no_grad():
        theirs = hf(torch.tensor(ids)).logits.numpy()
    assert np.abs(model.forward(ids)[0] - theirs).max() <= 1e-5
    status, _, err = _import(tmp_path, capsys, source="out", run="again")
    assert status == 0, err
    first = split_prefix(load_checkpoint(tmp_path / "run" / "ckpt")[0], "model")
    again = split_prefix(load_checkpoint(tmp_path / "again" / "ckpt")[0], "model")
    assert sorted(first) == sorted(again)
    for name, value in first.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)


def _task(n=120, seed=0):
    """Class 1 iff the text holds "dog"."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        words = list(rng.choice([w for w in WORDS if w != "dog"], size=rng.integers(3, 7)))
        if i % 2:
            words.insert(int(rng.integers(0, len(words))), "dog")
        texts.append(" ".join(words))
        labels.append(i % 2)
    return TextClassificationTask("toy", texts, np.array(labels), ("cat", "dog"))


@pytest.fixture
def bert_run(monkeypatch, tmp_path):
    """Two steps of `tinylm pretrain bert` on random sentences of WORDS."""
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(300)]
    monkeypatch.setattr(pretrain_run, "corpus_lines", lambda name: lines)
    monkeypatch.setattr(finetune_run, "load_task", lambda name: _task())
    settings = pretrain_settings({"family": "bert", "corpora": "ptb", "val_fraction": 0.1,
                                  "tokenizer": "word", "min_count": 1, "vocab_size": 32,
                                  "block_size": 12, "batch_size": 8, "max_steps": 2,
                                  "eval_interval": 2, "warmup_steps": 1, "eval_windows": 8,
                                  "out_dir": str(tmp_path / "bert"), "progress": False})
    train_pretrain(settings, {"n_layer": 2, "n_head": 2, "n_embd": 16}, log=lambda m: None)
    return tmp_path / "bert"


def test_a_bert_run_exports_and_comes_back_ready_to_fine_tune(bert_run, torch, tmp_path,
                                                              capsys):
    status, out, err = run_cli(["export-hf", str(bert_run), str(tmp_path / "hf")], capsys)
    assert status == 0 and "as BertForMaskedLM" in out, err
    model, _ = load_run_model(bert_run)
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    ids = np.random.default_rng(1).integers(5, model.vocab_size, size=(2, 12))
    with torch.no_grad():
        theirs = hf(input_ids=torch.tensor(ids)).logits.numpy()
    assert np.abs(model.forward(ids)[0] - theirs).max() <= 1e-5
    status, out, err = _import(tmp_path, capsys, run="bert2")
    assert status == 0 and "imported bert" in out, err
    best = split_prefix(load_checkpoint(bert_run / "ckpt")[0], "best")
    back = split_prefix(load_checkpoint(tmp_path / "bert2" / "ckpt")[0], "best")
    assert sorted(best) == sorted(back)
    for name, value in best.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    settings = finetune_settings({"task": "sms-spam", "split": "stratified", "epochs": 1,
                                  "batch_size": 16, "out_dir": str(tmp_path / "ft"),
                                  "progress": False})
    result = finetune(settings, tmp_path / "bert2", log=lambda m: None)
    assert 0 <= result["test"]["accuracy"] <= 1


# -- bad input --------------------------------------------------------------------------------
def test_import_without_a_tokenizer_says_how_to_give_one(hf_gpt2, tmp_path, capsys):
    status, _, err = _import(tmp_path, capsys)
    assert status == 1 and "--tokenizer PATH" in err and "--tokenizer gpt2" in err


def test_a_tokenizer_of_another_size_is_refused(hf_gpt2, tmp_path, capsys):
    CharTokenizer("abc").save(tmp_path / "abc.json")
    status, _, err = _import(tmp_path, capsys, "--tokenizer", str(tmp_path / "abc.json"))
    assert status == 1 and "3 tokens" in err and "vocab_size" in err


def test_an_existing_run_or_folder_is_kept(hf_gpt2, tmp_path, capsys):
    tokenizer = ["--tokenizer", str(tmp_path / "chars.json")]
    assert _import(tmp_path, capsys, *tokenizer)[0] == 0
    status, _, err = _import(tmp_path, capsys, *tokenizer)
    assert status == 1 and "--overwrite" in err
    assert _import(tmp_path, capsys, *tokenizer, "--overwrite")[0] == 0
    status, _, err = run_cli(["export-hf", str(tmp_path / "run"), str(tmp_path / "hf")], capsys)
    assert status == 1 and "--overwrite" in err


def test_a_family_hugging_face_does_not_share_is_refused(tmp_path, capsys):
    save_checkpoint(tmp_path / "lstm" / "ckpt", {"model/w": np.zeros(2)},
                    {"model": "lstm", "model_config": {}, "train_config": {}, "run": {},
                     "provenance": {}})
    status, _, err = run_cli(["export-hf", str(tmp_path / "lstm"), str(tmp_path / "hf")],
                             capsys)
    assert status == 1 and "'lstm'" in err
    status, _, err = run_cli(["export-hf", str(tmp_path / "nowhere"), str(tmp_path / "hf")],
                             capsys)
    assert status == 1 and "no checkpoint" in err


def test_the_commands_are_listed(capsys):
    status, out, _ = run_cli([], capsys)
    assert status == 0 and "import-hf" in out and "export-hf" in out
