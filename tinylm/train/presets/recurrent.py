"""Presets for the recurrent language models (tinylm/models/rnn_lm.py), chapter 06.

* ``ptb-small``: the "small" non-regularised LSTM of Zaremba et al. 2014 ("Recurrent neural
  network regularization", table 1: 120.7 validation / 114.5 test perplexity) on the Penn
  Treebank with its own train/valid/test split, 10k-word vocabulary (the data already maps
  rare words to <unk>; every line ends with <eos>): 2 layers of 200 LSTM units, 200-d
  embeddings, every parameter ~ U(-0.1, 0.1), no dropout; batches of 20 rows x 20 steps read
  sequentially (truncated BPTT, state carried), plain SGD, 13 epochs, lr halved after every
  epoch from the 5th on (decay_start and decay_every count epochs when ``epochs`` > 0).

  Their "lr 1, clip 5" is for *their* loss, the sum over the 20 time steps of the batch-mean
  cross-entropy; tinylm's loss is the mean over all 20 x 20 tokens, 1/20 of theirs, and so is
  its gradient. Clipping commutes with the scale -- lr * clip(20 g, 5) = 20 lr * clip(g, 5/20)
  -- so the same updates are lr 20 with clipping at 0.25 (the values PyTorch's
  word_language_model example uses for the same reason).

  One epoch is 2323 steps, so validating every 2323 steps validates at the epoch boundaries,
  where the state is reset anyway. Their test figure reads the test stream as one sequence:
  ``tinylm eval runs/ptb-small/ckpt --split test --batch-size 1``.
* ``ptb-small-gru``: the same set-up with GRU cells (for comparison).
* ``shakespeare-char-lstm``: a character-level LSTM on Tiny Shakespeare sized for a run of
  under ten minutes on two CPU cores: 2 x 256 units, AdamW with warm-up and cosine decay,
  2000 sequential batches of 32 x 64 characters (about 4 epochs of the 1.0M-character
  training split), no dropout (the run is too short to overfit much; without dropout on the
  embedding, the first layer's input projection folds into a 65-row table).
"""

PTB_STEPS_PER_EPOCH = 2323     # (929,589 training tokens // 20 rows - 1) // 20 steps

_PTB_SMALL_MODEL = {"n_embd": 200, "n_hidden": 200, "n_layer": 2, "dropout": 0.0,
                    "tie_weights": False, "init_range": 0.1}
_PTB_SMALL_TRAIN = {"dataset": "ptb", "tokenizer": "word", "batching": "sequential",
                    "batch_size": 20, "block_size": 20, "optimizer": "sgd", "lr": 20.0,
                    "momentum": 0.0, "weight_decay": 0.0, "grad_clip": 0.25, "schedule": "step",
                    "decay_start": 4, "decay_every": 1, "decay_factor": 0.5, "epochs": 13,
                    "eval_interval": PTB_STEPS_PER_EPOCH, "eval_iters": 0, "log_interval": 50,
                    "dtype": "float32"}

PRESETS = {
    "ptb-small": {
        "model": "lstm",
        "model_config": dict(_PTB_SMALL_MODEL),
        "train": dict(_PTB_SMALL_TRAIN, out_dir="runs/ptb-small"),
    },
    "ptb-small-gru": {
        "model": "gru",
        "model_config": dict(_PTB_SMALL_MODEL),
        "train": dict(_PTB_SMALL_TRAIN, out_dir="runs/ptb-small-gru"),
    },
    "shakespeare-char-lstm": {
        "model": "lstm",
        "model_config": {"n_embd": 64, "n_hidden": 256, "n_layer": 2, "dropout": 0.0,
                         "tie_weights": False, "init_range": 0.0},
        "train": {"dataset": "tinyshakespeare", "tokenizer": "char", "batching": "sequential",
                  "batch_size": 32, "block_size": 64, "optimizer": "adamw", "lr": 3e-3,
                  "betas": (0.9, 0.99), "weight_decay": 0.01, "grad_clip": 1.0,
                  "schedule": "cosine", "warmup_iters": 50, "min_lr": 2e-4, "max_iters": 2000,
                  "eval_interval": 500, "eval_iters": 0, "log_interval": 20,
                  "out_dir": "runs/shakespeare-char-lstm"},
    },
}
