"""Presets for the sequence-to-sequence models (tinylm/train/seq2seq_run.py): ``tinylm train
seq2seq --preset NAME``. Each is {"model": "seq2seq", "model_config": the family's
configuration, "train": Seq2SeqSettings fields}.

Toy tasks (deep-learning-from-scratch-2's, characters on both sides), the recurrent model
with Luong attention; the three addition variants separate the effect of reversing the
source from that of attention:

* ``addition``: attention ("general"), source reversed;
* ``addition-plain``: attention, source read forwards;
* ``addition-no-attention``: no attention (the decoder sees only the encoder's final
  state), source reversed;
* ``date``: attention, a bidirectional encoder. A one-directional encoder's state at the
  day "2" of "9/2/92" has not read what follows, so it looks like the "2" of "9/20/92":
  that model writes 1992-09-20 and misses about 2 % of the test answers.

Translation, word tokens on the English side (tinylm/data/pair_tokens.py), pairs of at
most 16 tokens per side, words seen fewer than 3 times in training read as <unk>:

* ``fra-eng``: French -> English, a small Transformer (128-d, 4 heads, 2 + 2 blocks, 32
  positions, no dropout, token tables ~ N(0, 0.02^2)), 5,000 steps of about 110 pairs
  (token budget 2,048; about 3.8 epochs), AdamW lr 3e-3 after 200 warm-up steps, cosine to
  0, label smoothing 0.1, at most 30 minutes. On 2 cores a 256-d 3 + 3 model reaches only
  1.5 epochs in 30 minutes and stops far from converged (15 BLEU): with this little
  compute the smaller model, seeing the data more often, wins;
* ``fra-eng-rnn``: the recurrent attention model on the same data (1,000 steps of token
  budget 4,096);
* ``cmn-eng``: Chinese characters -> English words, the 256-d 3 + 3 Transformer with dropout
  0.1, 500 steps of token budget 4,096 (about 4 epochs of the 27,000 training pairs).

The measured results, with their commands and times, are in the sequence-to-sequence
chapter's results section.
"""

_TOY = {"src_scheme": "chars", "tgt_scheme": "chars", "max_tokens": 32,
        "valid_fraction": 0.05, "test_fraction": 0.1, "keep_together": "source", "family": "rnn",
        "token_budget": 1536,
        "lr": 3e-3, "betas": (0.9, 0.999), "eps": 1e-8, "grad_clip": 5.0,
        "lr_schedule": "cosine", "warmup_steps": 50, "min_lr": 1e-4, "eval_interval": 500}
_TOY_RNN = {"n_embd": 32, "n_hidden": 128, "n_layer": 1, "cell": "gru", "attention": "general"}


def _addition(name: str, attention: str, reverse: bool, steps: int) -> dict:
    return {"model": "seq2seq", "model_config": dict(_TOY_RNN, attention=attention),
            "train": dict(_TOY, dataset="addition", reverse_source=reverse, max_steps=steps,
                          out_dir=f"runs/{name}")}


_FRA = {"dataset": "fra-eng", "reverse_pairs": True, "src_scheme": "words",
        "tgt_scheme": "words", "min_count": 3, "max_tokens": 16, "valid_fraction": 0.01,
        "test_fraction": 0.02, "betas": (0.9, 0.98), "eps": 1e-9, "weight_decay": 0.0,
        "grad_clip": 1.0, "label_smoothing": 0.1, "lr_schedule": "cosine", "min_lr": 0.0,
        "max_minutes": 30.0}
# the small Transformer's schedule (fra-eng) and the first, larger runs' (fra-eng-rnn, cmn-eng)
_SMALL_STEPS = {"token_budget": 2048, "lr": 3e-3, "warmup_steps": 200, "max_steps": 5000,
                "eval_interval": 500}
_LARGE_STEPS = {"token_budget": 4096, "lr": 1.5e-3, "warmup_steps": 150, "max_steps": 1000,
                "eval_interval": 250}
_TRANSFORMER = {"n_embd": 256, "n_head": 4, "n_enc_layer": 3, "n_dec_layer": 3, "max_len": 32,
                "dropout": 0.0}
_SMALL_TRANSFORMER = dict(_TRANSFORMER, n_embd=128, n_enc_layer=2, n_dec_layer=2,
                          embedding_std=0.02)

PRESETS = {
    "addition": _addition("addition", "general", True, 8000),
    "addition-plain": _addition("addition-plain", "general", False, 8000),
    "addition-no-attention": _addition("addition-no-attention", "none", True, 8000),
    "date": {"model": "seq2seq", "model_config": dict(_TOY_RNN, bidirectional=True),
             "train": dict(_TOY, dataset="date", max_steps=1500, out_dir="runs/date")},
    "fra-eng": {"model": "seq2seq", "model_config": dict(_SMALL_TRANSFORMER),
                "train": dict(_FRA, **_SMALL_STEPS, family="transformer",
                              out_dir="runs/fra-eng")},
    "fra-eng-rnn": {"model": "seq2seq",
                    "model_config": {"n_embd": 256, "n_hidden": 256, "n_layer": 1,
                                     "cell": "gru", "attention": "general"},
                    "train": dict(_FRA, **_LARGE_STEPS) | {"family": "rnn", "lr": 2e-3,
                                  "warmup_steps": 200, "out_dir": "runs/fra-eng-rnn"}},
    "cmn-eng": {"model": "seq2seq", "model_config": dict(_TRANSFORMER, dropout=0.1),
                "train": dict(_FRA, **_LARGE_STEPS) | {
                    "dataset": "cmn-eng", "reverse_pairs": False, "src_scheme": "chars",
                    "min_count": 2, "valid_fraction": 0.03, "test_fraction": 0.06,
                    "family": "transformer", "max_steps": 500, "out_dir": "runs/cmn-eng"}},
}
