"""Presets for GPT (tinylm/models/gpt.py): nanoGPT's two Tiny Shakespeare char-level runs,
and a char-level GPT of five-character Tang quatrains.

* ``shakespeare-char-cpu``: nanoGPT's README "I only have a macbook" configuration
  (4 layers, 4 heads, width 128, block 64, batch 12, 2000 iterations, dropout 0, lr 1e-3
  cosine to 1e-4). nanoGPT reports a validation loss of about 1.88 after ~3 minutes.
* ``shakespeare-bpe-cpu``: the same model and run with a byte-level BPE of 1,024 tokens
  (tinylm/data/bpe.py) learned from the training 90 % of the text instead of the 65
  characters. A window of 64 tokens now holds about 2.4 times as many characters (1,115,394 characters become 460,578 tokens), and the
  loss is per token, so compare runs by nats per character (``tinylm eval`` prints it).
* ``shakespeare-char-student``: a small student for distillation (tinylm/compress/distill.py,
  ``tinylm distill``): 2 layers, 4 heads, width 64 (about 1/7 of shakespeare-char-cpu's
  parameters), trained on the same data for the same steps; also trainable on its own
  (``tinylm train gpt --preset shakespeare-char-student``), the from-scratch baseline.
* ``shakespeare-char``: config/train_shakespeare_char.py, the "baby GPT" (6 layers, 6 heads,
  width 384, block 256, batch 64, dropout 0.2, 5000 iterations); nanoGPT reports a
  validation loss of 1.4697 on one A100 in about 3 minutes. On 2 CPU cores it takes hours.
* ``tang-poems``: the quatrains of the five-character Tang poems, one per line
  ("tang-poems", tinylm/data/poetry.py: 183,900 training characters, 4,703 distinct),
  sampled with ``tinylm poems``. The shape is shakespeare-char-cpu's (4 layers, 4 heads,
  width 128; 1.4M parameters, 0.6M of them the character table): with 4,703 characters the
  tied output head is about 40 % of the arithmetic of a step, and width 192 doubles the
  step (measured on one core: 0.45 s for width 128, 0.81 s for 192), so 128 is what trains
  in about 15 minutes on 2 idle cores. block_size 64 holds two and a half quatrains (24
  characters and a newline each), so every window sees at least one whole quatrain from
  its opening newline, and often the poem's previous stanza. 3,000 steps of 32 x 64 tokens
  are 33 passes over the training text, hence dropout 0.1.

Common to the three, from nanoGPT's train.py: AdamW with betas (0.9, 0.99), weight decay
0.1 on matrices only, global gradient clipping at 1.0, 100 warm-up iterations.
The training window is the model's block_size (TrainConfig.block_size left unset).
Validation here is the whole validation split (eval_iters 0) at every evaluation, not an
estimate from 20/200 random batches as in nanoGPT.
"""

_COMMON = {"dataset": "tinyshakespeare", "tokenizer": "char", "batching": "random",
           "optimizer": "adamw", "betas": (0.9, 0.99), "weight_decay": 0.1, "grad_clip": 1.0,
           "schedule": "cosine", "warmup_iters": 100, "lr": 1e-3, "min_lr": 1e-4,
           "eval_iters": 0}

PRESETS = {
    "shakespeare-char-cpu": {
        "model": "gpt",
        "model_config": {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128,
                         "dropout": 0.0},
        "train": {**_COMMON, "batch_size": 12, "max_iters": 2000,
                  "lr_decay_iters": 2000, "eval_interval": 250, "log_interval": 10,
                  "out_dir": "runs/shakespeare-char-cpu"},
    },
    "shakespeare-bpe-cpu": {
        "model": "gpt",
        "model_config": {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128,
                         "dropout": 0.0},
        "train": {**_COMMON, "tokenizer": "bpe", "subword_vocab_size": 1024, "batch_size": 12,
                  "max_iters": 2000, "lr_decay_iters": 2000, "eval_interval": 250,
                  "log_interval": 10, "out_dir": "runs/shakespeare-bpe-cpu"},
    },
    "shakespeare-char-student": {
        "model": "gpt",
        "model_config": {"block_size": 64, "n_layer": 2, "n_head": 4, "n_embd": 64,
                         "dropout": 0.0},
        "train": {**_COMMON, "batch_size": 12, "max_iters": 2000,
                  "lr_decay_iters": 2000, "eval_interval": 250, "log_interval": 10,
                  "out_dir": "runs/shakespeare-char-student"},
    },
    "shakespeare-char": {
        "model": "gpt",
        "model_config": {"block_size": 256, "n_layer": 6, "n_head": 6, "n_embd": 384,
                         "dropout": 0.2},
        "train": {**_COMMON, "batch_size": 64, "max_iters": 5000,
                  "lr_decay_iters": 5000, "eval_interval": 250, "log_interval": 10,
                  "out_dir": "runs/shakespeare-char"},
    },
    "tang-poems": {
        "model": "gpt",
        "model_config": {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128,
                         "dropout": 0.1},
        "train": {**_COMMON, "dataset": "tang-poems", "batch_size": 32, "max_iters": 3000,
                  "lr_decay_iters": 3000, "eval_interval": 250, "log_interval": 10,
                  "out_dir": "runs/tang-poems"},
    },
}
