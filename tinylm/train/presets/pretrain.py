"""Presets for ``tinylm pretrain`` (tinylm/train/pretrain_run.py): a small BERT and a GPT of
the same shape, pre-trained on the same English (chapter 09).

Both: 4 blocks of width 128 with 4 heads (2.9 M parameters with the 16,384-word vocabulary,
2.1 M of them the token table), dropout 0.1, windows of 64 tokens, 64 windows a step (4,096
tokens), 4,000 steps (16 M tokens, about 7 passes over the 2.3 M-token corpus), AdamW with a
300-step warm-up to 1e-3 and a cosine to 1e-4. BERT is post-LN, as the paper; its MLM
predicts the 15 % masked tokens of each window.
"""

_SHAPE = {"n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.1}
_RUN = {"block_size": 64, "batch_size": 64, "max_steps": 4000, "lr": 1e-3, "min_lr": 1e-4,
        "warmup_steps": 300, "eval_interval": 250}

PRESETS = {
    "bert-small": {"model": "pretrained", "model_config": _SHAPE,
                   "train": {**_RUN, "family": "bert", "out_dir": "runs/bert-small"}},
    "gpt-small": {"model": "pretrained", "model_config": _SHAPE,
                  "train": {**_RUN, "family": "gpt", "out_dir": "runs/gpt-small"}},
}
