"""Pre-training and fine-tuning runs (tinylm/train/pretrain_run.py, finetune_run.py) and
their commands (``tinylm pretrain``, ``tinylm finetune``, ``tinylm classify``) on a tiny
corpus and a tiny task the tests make: the batches are a pure function of (seed, step), a
resumed run reproduces the uninterrupted one, every fine-tuning method trains what it says,
LoRA is merged into plain tensors, and bad input is named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import run_cli
from tinylm.checkpoint import load_checkpoint
from tinylm.data.classification import TextClassificationTask
from tinylm.data.pretraining import CLS_ID, MASK_ID, SEP_ID
from tinylm.train import finetune_run, pretrain_run
from tinylm.train.finetune_run import finetune, finetune_settings
from tinylm.train.pretrain_run import pretrain_settings, train_pretrain, training_batch

WORDS = "the a cat dog sat ran on under mat log red big small quick slow".split()
TINY = {"n_layer": 2, "n_head": 2, "n_embd": 16, "dropout": 0.1}


def _lines(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(n)]


@pytest.fixture
def corpus(monkeypatch):
    lines = {"ptb": _lines(400, 0), "timemachine": _lines(200, 1)}
    monkeypatch.setattr(pretrain_run, "corpus_lines", lambda name: lines[name])
    return lines


def _settings(family, out_dir, **extra):
    return pretrain_settings({"family": family, "corpora": "ptb,timemachine",
                              "val_fraction": 0.1, "tokenizer": "word", "min_count": 1,
                              "vocab_size": 32, "block_size": 12,
                              "batch_size": 8, "max_steps": 6, "eval_interval": 3,
                              "warmup_steps": 2, "eval_windows": 16, "out_dir": str(out_dir),
                              "progress": False, **extra})


def test_a_wordpiece_vocabulary_spells_unseen_words_in_pieces(corpus, tmp_path):
    """The default tokenizer: BERT's specials first, and a word the corpus never had is
    pieces, not [UNK]."""
    data = pretrain_run.prepare_corpus(_settings("bert", tmp_path, tokenizer="wordpiece",
                                                 vocab_size=64, min_count=2))
    tokens = data.tokenizer.to_dict()["tokens"]
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = data.tokenizer.split("redcat dogmat")       # two words the corpus never had
    assert "[UNK]" not in pieces and len(pieces) > 2
    assert data.train.max() < 64 and (data.train == SEP_ID).sum() > 0


def test_a_wordpiece_run_fine_tunes_and_classifies(corpus, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(finetune_run, "load_task", lambda name: _task())
    run = tmp_path / "bert-wp"
    train_pretrain(_settings("bert", run, tokenizer="wordpiece", vocab_size=64, min_count=2,
                             max_steps=2), TINY, log=lambda m: None)
    result = _finetune(run, tmp_path, epochs=2)
    assert 0 <= result["test"]["accuracy"] <= 1
    status, out, err = run_cli(["classify", str(tmp_path / "ft"), "the dogmat sat"], capsys)
    assert status == 0 and out.split("\t")[0] in ("cat", "dog"), err


def test_bert_batches_are_masked_windows_and_a_function_of_seed_and_step(corpus, tmp_path):
    s = _settings("bert", tmp_path)
    data = pretrain_run.prepare_corpus(s)
    inputs, targets, segments, _ = training_batch(data.train, 5, s, 32)
    np.testing.assert_array_equal(inputs, training_batch(data.train, 5, s, 32).inputs)
    assert segments is None
    assert inputs.shape == (8, 12) and (inputs[:, 0] == CLS_ID).all()
    assert (inputs[:, -1] == SEP_ID).all()
    assert (targets != -100).any(axis=1).all()              # every window predicts something
    assert (inputs == MASK_ID).any()
    assert not (targets[inputs == SEP_ID] != -100).any()    # [SEP] is never a target
    x, y, _, _ = training_batch(data.train, 5, _settings("gpt", tmp_path), 32)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])


def test_next_sentence_pairs_follow_or_are_random_and_train(corpus, tmp_path):
    s = _settings("bert", tmp_path, next_sentence=True, batch_size=64)
    data = pretrain_run.prepare_corpus(s)
    rng = np.random.default_rng(3)
    starts = rng.integers(0, data.train.size - 9, size=64)
    windows = data.train[starts[:, None] + np.arange(9)[None, :]]
    batch = pretrain_run.nsp_batch(data.train, windows, s, 32, np.random.default_rng(4))
    assert batch.inputs.shape == (64, 12)
    assert 10 < batch.nsp_targets.sum() < 54                 # about half are random
    for b in range(64):
        row = np.where(batch.targets[b] != -100, batch.targets[b], batch.inputs[b])
        boundary = int(np.argmax(batch.segments[b])) - 1     # the [SEP] that ends A
        assert row[0] == CLS_ID and row[boundary] == SEP_ID and row[-1] == SEP_ID
        assert 1 <= boundary <= 9 and batch.segments[b, boundary + 1:].all()
        if batch.nsp_targets[b] == 0:                        # B continues A
            np.testing.assert_array_equal(np.delete(row, [0, boundary, 11]), windows[b])
    history = train_pretrain(s, TINY, log=lambda m: None)
    assert "val_nsp_accuracy" in history.evals[-1]
    with pytest.raises(ValueError, match="needs family 'bert'"):
        _settings("gpt", tmp_path, next_sentence=True)


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_a_resumed_pretraining_run_reproduces_the_uninterrupted_one(family, corpus, tmp_path):
    whole = train_pretrain(_settings(family, tmp_path / "whole"), TINY, log=lambda m: None)
    train_pretrain(_settings(family, tmp_path / "split", max_steps=3), TINY,
                   log=lambda m: None)
    tokenizer = pretrain_run.prepare_corpus(_settings(family, tmp_path)).tokenizer
    resumed = train_pretrain(_settings(family, tmp_path / "split"), TINY, resume=True,
                             tokenizer=tokenizer, log=lambda m: None)
    assert [loss for _, loss in resumed.train_losses] == [loss for _, loss in
                                                          whole.train_losses]
    assert resumed.evals[-1]["val_loss"] == whole.evals[-1]["val_loss"]
    _, meta = load_checkpoint(tmp_path / "whole" / "ckpt")
    assert meta["model"] == "pretrained" and meta["family"] == family
    assert meta["provenance"]["tokenizer"]["tokens"][:5] == ["[PAD]", "[UNK]", "[CLS]",
                                                              "[SEP]", "[MASK]"]


_CLI_TINY = ["--setting", "vocab_size=32", "--setting", "min_count=1", "--setting",
             "tokenizer=word", "--setting", "block_size=12", "--setting", "batch_size=8",
             "--setting", "eval_interval=2", "--setting", "val_fraction=0.1",
             "--model", "n_layer=1", "--model", "n_head=2", "--model", "n_embd=16",
             "--no-progress"]


def test_a_continued_run_starts_from_the_earlier_runs_weights_and_tokenizer(corpus, tmp_path,
                                                                            capsys):
    """``--setting init=RUN``: a new run on other text begins at RUN's best parameters and
    reads that text with RUN's tokenizer (a learning rate of 1e-12 keeps the one step from
    moving a weight by more than 1e-12)."""
    first, second = tmp_path / "first", tmp_path / "second"
    status, _, err = run_cli(["pretrain", "bert", "--max-steps", "4", "--out-dir", str(first),
                              "--setting", "corpora=ptb", *_CLI_TINY], capsys)
    assert status == 0, err
    status, text, err = run_cli(["pretrain", "bert", "--max-steps", "1", "--out-dir",
                                 str(second), "--setting", f"init={first}", "--setting",
                                 "corpora=timemachine", "--setting", "lr=1e-12", "--setting",
                                 "min_lr=0", "--setting", "val_fraction=0.1", "--no-progress"],
                                capsys)
    assert status == 0, err
    before, meta_before = load_checkpoint(first / "ckpt")
    after, meta_after = load_checkpoint(second / "ckpt")
    weights = [k[len("best/"):] for k in before if k.startswith("best/")]
    assert weights and all(np.allclose(before[f"best/{k}"], after[f"model/{k}"], rtol=0,
                                       atol=1e-11) for k in weights)
    assert meta_after["provenance"]["tokenizer"] == meta_before["provenance"]["tokenizer"]
    assert meta_after["model_config"] == meta_before["model_config"]
    assert meta_after["train_config"]["init"] == str(first)
    assert meta_after["train_config"]["corpora"] == "timemachine"



def test_the_pretrain_command_resumes_its_own_run(corpus, tmp_path, capsys):
    """``tinylm pretrain bert --resume`` continues a BERT run (its stored model
    configuration, NSP flag included, rebuilds the same model) to a longer budget."""
    out = tmp_path / "bert"
    assert run_cli(["pretrain", "bert", "--max-steps", "2", "--out-dir", str(out),
                    "--setting", "corpora=ptb", *_CLI_TINY], capsys)[0] == 0
    status, text, err = run_cli(["pretrain", "bert", "--resume", "--max-steps", "4",
                                 "--out-dir", str(out), "--no-progress"], capsys)
    assert status == 0, err
    assert "(4 steps)" in text
    status, _, err = run_cli(["pretrain", "bert", "--resume", "--out-dir", str(out),
                              "--setting", "corpora=timemachine"], capsys)
    assert status == 1 and "cannot change corpora" in err, err

@pytest.mark.parametrize("extra, message", [
    (["--setting", "vocab_size=64"], "vocab_size cannot differ"),
    (["--model", "n_layer=2"], "--model cannot change the model of a continued run"),
])
def test_a_continued_run_keeps_the_earlier_model(extra, message, corpus, tmp_path, capsys):
    first = tmp_path / "first"
    assert run_cli(["pretrain", "bert", "--max-steps", "2", "--out-dir", str(first),
                    "--setting", "corpora=ptb", *_CLI_TINY], capsys)[0] == 0
    status, _, err = run_cli(["pretrain", "bert", "--out-dir", str(tmp_path / "x"),
                              "--setting", f"init={first}", *extra], capsys)
    assert status == 1 and message in err, err
    status, _, err = run_cli(["pretrain", "gpt", "--out-dir", str(tmp_path / "x"),
                              "--setting", f"init={first}"], capsys)
    assert status == 1 and "it is a 'bert' run" in err, err
    status, _, err = run_cli(["pretrain", "bert", "--out-dir", str(tmp_path / "x"),
                              "--setting", f"init={tmp_path / 'none'}"], capsys)
    assert status == 1 and "holds no pre-training checkpoint" in err, err


def test_a_tasks_unlabelled_text_holds_no_held_out_message(monkeypatch):
    """The "sms-spam" corpus: the texts outside the balanced split's validation and test
    parts, minus every copy of a held-out text, labels gone."""
    from tinylm.data import pretraining
    from tinylm.data.classification import balanced_split
    task = _task(240)
    task.texts[7] = task.texts[8]                       # a duplicate pair across the parts?
    monkeypatch.setattr(pretraining, "load_task", lambda name: task)
    lines = pretraining.corpus_lines("sms-spam")
    split = balanced_split(task, seed=123)
    held = {task.texts[i] for i in np.concatenate([split.val, split.test])}
    assert lines and not held & set(lines)
    outside = [task.texts[i] for i in range(len(task)) if i not in set(split.val) |
               set(split.test)]
    assert lines == [t for t in outside if t not in held]
    assert set(split.train.tolist()) and all(task.texts[i] in lines or task.texts[i] in held
                                             for i in split.train)


# -- fine-tuning ------------------------------------------------------------------------------

def _task(n=240, seed=0):
    """Class 1 iff the text holds "dog" (a task a small model learns in a few epochs)."""
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
def pretrained(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(finetune_run, "load_task", lambda name: _task())
    out = tmp_path / "bert"
    train_pretrain(_settings("bert", out, max_steps=4), TINY, log=lambda m: None)
    return out


def _finetune(run, tmp_path, **extra):
    settings = finetune_settings({"task": "sms-spam", "split": "stratified", "epochs": 10,
                                  "lr": 1e-2, "batch_size": 16, "out_dir": str(tmp_path / "ft"),
                                  "progress": False, **extra})
    return finetune(settings, run, log=lambda m: None)


@pytest.mark.parametrize("method", ["full", "probe", "top", "lora"])
def test_every_method_fine_tunes_and_reports(method, pretrained, tmp_path):
    # a probe reads features the backbone already has: the mean of the token states holds
    # "dog" linearly, the pooler of a 4-step pre-training barely does
    result = _finetune(pretrained, tmp_path, method=method,
                       pooling="mean" if method == "probe" else "")
    assert result["test"]["accuracy"] > (0.9 if method == "full" else 0.6), result["test"]
    assert np.array(result["test"]["confusion_matrix"]).sum() == 48
    arrays, meta = load_checkpoint(tmp_path / "ft" / "ckpt")
    assert meta["model"] == "classifier"
    assert not any("lora" in name for name in arrays)        # LoRA merged into the weights
    counts = result["trainable_parameters"], result["total_parameters"]
    if method == "full":
        assert counts[0] == counts[1]
    elif method == "probe":
        assert counts[0] == 16 * 2 + 2                         # the head alone
    else:
        assert counts[0] < counts[1]


def test_a_probe_leaves_the_backbone_as_pre_trained(pretrained, tmp_path):
    _finetune(pretrained, tmp_path, method="probe")
    arrays, _ = load_checkpoint(tmp_path / "ft" / "ckpt")
    before, _ = load_checkpoint(pretrained / "ckpt")
    for name, value in arrays.items():
        if name.startswith("model/backbone."):
            np.testing.assert_array_equal(value, before[name.replace("model/backbone.",
                                                                     "best/")], err_msg=name)


def test_the_lstm_baseline_and_a_label_fraction(monkeypatch, tmp_path):
    monkeypatch.setattr(finetune_run, "load_task", lambda name: _task())
    result = _finetune(None, tmp_path, backbone="lstm", label_fraction=0.5)
    assert result["backbone"] == "lstm" and result["init"] == "random"
    assert result["train_examples"] == 84                    # half of the 168 training texts
    assert result["test"]["accuracy"] > 0.6


def test_min_steps_adds_epochs_when_the_labels_are_few(monkeypatch, tmp_path):
    # 22 texts in batches of 16 are 2 steps an epoch: 3 epochs are 6 steps, 9 asks for 5
    monkeypatch.setattr(finetune_run, "load_task", lambda name: _task())
    few = _finetune(None, tmp_path, backbone="lstm", label_fraction=0.125, epochs=3)
    assert (few["train_examples"], few["epochs"], few["steps"]) == (22, 3, 6)
    more = _finetune(None, tmp_path, backbone="lstm", label_fraction=0.125, epochs=3,
                     min_steps=9)
    assert (more["epochs"], more["steps"]) == (5, 10)
    enough = _finetune(None, tmp_path, backbone="lstm", label_fraction=0.125, epochs=3,
                       min_steps=5)
    assert enough["epochs"] == 3


def test_classify_prints_labels_and_refuses_bad_input(pretrained, tmp_path, capsys):
    _finetune(pretrained, tmp_path, method="full")
    status, out, err = run_cli(["classify", str(tmp_path / "ft"), "the dog sat",
                                "a cat ran"], capsys)
    assert status == 0, err
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [label for label, _ in lines] == ["dog", "cat"]
    assert all(0.5 < float(p) <= 1 for _, p in lines)
    status, _, err = run_cli(["classify", str(tmp_path / "ft"), "  "], capsys)
    assert status == 1 and "empty" in err
    status, _, err = run_cli(["classify", str(pretrained), "a dog"], capsys)
    assert status == 1 and "not a fine-tuned classifier" in err
    status, _, err = run_cli(["finetune", str(tmp_path / "ft"), "--task", "sms-spam"], capsys)
    assert status == 1 and "not a pre-training run" in err


def test_the_commands_run_end_to_end(corpus, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(finetune_run, "load_task", lambda name: _task())
    out = tmp_path / "gpt"
    settings = ["--setting", "corpora=ptb,timemachine", "--setting", "vocab_size=64",
                "--setting", "min_count=2",
                "--setting", "block_size=12", "--setting", "batch_size=8",
                "--setting", "eval_interval=2", "--setting", "val_fraction=0.1",
                "--model", "n_layer=1", "--model", "n_embd=16", "--no-progress"]
    status, text, err = run_cli(["pretrain", "gpt", "--max-steps", "2", "--out-dir", str(out),
                                 *settings], capsys)
    assert status == 0, err
    assert "done in" in text
    status, _, err = run_cli(["pretrain", "gpt", "--max-steps", "2", "--out-dir", str(out),
                              *settings], capsys)
    assert status == 1 and "already holds a checkpoint" in err
    status, text, err = run_cli(["finetune", str(out), "--task", "sms-spam", "--split",
                                 "stratified", "--epochs", "1", "--out-dir",
                                 str(tmp_path / "ft"), "--json"], capsys)
    assert status == 0, err
    result = json.loads(text)
    assert result["backbone"] == "gpt" and 0 <= result["test"]["accuracy"] <= 1


@pytest.mark.parametrize("argv, message", [
    (["finetune", "--task", "sms-spam"], "needs a pre-trained run"),
    (["finetune", "--task", "sms-spam", "--setting", "colour=red"], "not a fine-tuning"),
    (["pretrain", "bert", "--setting", "corpora=wiki"], "corpora='wiki'"),
    (["pretrain", "bert", "--preset", "gpt-small"], "not a bert pre-training preset"),
])
def test_bad_settings_are_one_line_errors(argv, message, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(finetune_run, "load_task", lambda name: _task())
    status, _, err = run_cli([*argv, "--out-dir", str(tmp_path / "x")], capsys)
    assert status == 1 and message in err, err


def test_the_label_curve_runs_both_inits_on_the_same_subsets(pretrained, tmp_path, capsys):
    status, text, err = run_cli(["finetune", str(pretrained), "--task", "sms-spam", "--split",
                                 "stratified", "--epochs", "2", "--label-curve", "0.25,1",
                                 "--seeds", "0,1", "--out-dir", str(tmp_path / "curve"),
                                 "--json"], capsys)
    assert status == 0, err
    curve = json.loads(text)
    assert curve["train_examples"] == [42, 168]
    assert set(curve["accuracy"]) == {"pretrained", "random"}
    assert all(len(row) == 2 for rows in curve["accuracy"].values() for row in rows)
    assert (tmp_path / "curve" / "label-curve.png").stat().st_size > 0
    status, _, err = run_cli(["finetune", str(pretrained), "--task", "sms-spam",
                              "--label-curve", "0,1"], capsys)
    assert status == 1 and "(0, 1]" in err


def test_a_lora_rank_larger_than_the_layer_is_named(pretrained, tmp_path, capsys):
    status, _, err = run_cli(["finetune", str(pretrained), "--task", "sms-spam", "--method",
                              "lora", "--setting", "lora_rank=64", "--out-dir",
                              str(tmp_path / "x")], capsys)
    assert status == 1 and "LoRA rank larger than the layer" in err, err


def test_a_checkpoint_whose_vocabulary_differs_from_its_model_is_refused(pretrained, tmp_path,
                                                                          capsys):
    """A pre-training checkpoint rewritten (consistently, with valid checksums) with a
    tokenizer of another size: fine-tuning names the mismatch instead of mis-encoding."""
    from tinylm.checkpoint import save_checkpoint
    arrays, meta = load_checkpoint(pretrained / "ckpt")
    meta["provenance"]["tokenizer"]["tokens"] = meta["provenance"]["tokenizer"]["tokens"][:-3]
    save_checkpoint(tmp_path / "mixed" / "ckpt", arrays, meta)
    status, _, err = run_cli(["finetune", str(tmp_path / "mixed"), "--task", "sms-spam",
                              "--out-dir", str(tmp_path / "x")], capsys)
    assert status == 1 and "does not match its model" in err, err
