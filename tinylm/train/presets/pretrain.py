"""Presets for ``tinylm pretrain`` (tinylm/train/pretrain_run.py): a small BERT and a GPT of
the same shape, pre-trained on the same English (chapter 09).

Both: a 16,384-token WordPiece vocabulary trained on the corpus (pairs merged when seen at
least 20 times: tinylm/data/pretraining.py), 4 blocks of width 128 with 4 heads (2.9 M
parameters, 2.1 M of them the token table), dropout 0.1, windows of 64 tokens, 4,000 steps,
AdamW with a 300-step warm-up to 1e-3 and a cosine to 1e-4. BERT is post-LN, as the paper; its MLM
predicts the 15 % masked tokens of each window.

The batch is chosen for equal arithmetic, not equal tokens: BERT reads 64 windows a step
(4,096 tokens, 16 M in the run, about 7 passes over the 2.3 M-token corpus) and predicts
about 600 of them; GPT predicts every token, and its vocabulary head alone is then 3.5
times BERT's whole step, so it reads 16 windows (1,024 tokens, 4 M in the run, every one a
prediction). Each run takes about the same time on the same machine.
"""

_SHAPE = {"n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.1}
_RUN = {"block_size": 64, "max_steps": 4000, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 300,
        "eval_interval": 250}

PRESETS = {
    "bert-small": {"model": "pretrained", "model_config": _SHAPE,
                   "train": {**_RUN, "family": "bert", "batch_size": 64,
                             "out_dir": "runs/bert-small"}},
    "gpt-small": {"model": "pretrained", "model_config": _SHAPE,
                  "train": {**_RUN, "family": "gpt", "batch_size": 16,
                            "out_dir": "runs/gpt-small"}},
}
