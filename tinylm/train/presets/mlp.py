"""Presets for the Bengio-style MLP language model (tinylm/models/mlp_lm.py)."""

PRESETS = {
    # The demo: a char-level MLP LM on Tiny Shakespeare, about 3 minutes on 2 CPU cores.
    # A 6-character window generalises better than a 10-character one (validation 1.620
    # against 1.642) or a 16-character one without dropout (1.743); chapter 03, section 10.
    "shakespeare-char-mlp": {
        "model": "mlp",
        "model_config": {"block_size": 6, "n_embd": 32, "n_hidden": 768, "embd_std": 1.0,
                         "dropout": 0.15},
        "train": {"dataset": "tinyshakespeare", "tokenizer": "char", "batching": "random",
                  # 64 positions per training row, each predicted from its own 6-token window
                  "batch_size": 32, "block_size": 64, "optimizer": "adamw", "lr": 3e-3,
                  "betas": (0.9, 0.99), "weight_decay": 0.01, "grad_clip": 1.0,
                  "schedule": "cosine", "warmup_iters": 100, "min_lr": 3e-4,
                  "max_iters": 6000, "eval_interval": 500, "eval_iters": 0,
                  "out_dir": "runs/shakespeare-char-mlp"},
    },
}

# The longer run of chapter 03, section 10: six characters of context (the sweet spot of
# both the MLP and the n-grams), a wider hidden layer with more dropout, and 16,000 steps --
# the model that beats the best n-gram of orders 1-5 (1.5665 against 1.5882).
PRESETS["shakespeare-char-mlp-large"] = {
    "model": "mlp",
    "model_config": {"block_size": 6, "n_embd": 48, "n_hidden": 1536, "embd_std": 1.0,
                     "dropout": 0.3},
    "train": dict(PRESETS["shakespeare-char-mlp"]["train"], max_iters=16000, min_lr=1e-4,
                  eval_interval=2000, out_dir="runs/shakespeare-char-mlp-large"),
}

# The count-based baseline the MLP must beat, scored by the same evaluation code
# (tinylm.evaluate.evaluate_lm with the same batch and block sizes).
PRESETS["shakespeare-char-ngram"] = {
    "model": "ngram",
    "model_config": {"order": 7, "smoothing": "kneser_ney", "discount": 0.9},
    "train": dict(PRESETS["shakespeare-char-mlp"]["train"], out_dir="runs/shakespeare-char-ngram"),
}
