"""``tinylm bench seq2seq``: a Transformer encoder-decoder training step (forward, backward,
AdamW), tinylm against its PyTorch twin on the same configuration, weights and batch.

    tinylm bench seq2seq [--embd 256] [--heads 4] [--enc-layers 3] [--dec-layers 3]
                         [--max-len 32] [--src-vocab 8000] [--tgt-vocab 8000] [--batch 64]
                         [--src-len 12] [--tgt-len 11] [--steps 5] [--repeat 5]
                         [--dtype float32] [--threads N] [--profile] [--beam-sentences 16]
                         [--beam-width 5] [--no-torch] [--json]

The defaults are the fra-eng translation setting: width 256, 4 heads, 3 + 3 blocks,
vocabularies of 8000, batches of 64 sentence pairs of about 10-12 tokens. The batch is
drawn once from seed 0: sources of ``--src-len`` positions, right-padded rows of random
lengths in [src_len / 2, src_len] (``src_mask``), targets of ``--tgt-len`` positions with
the same padding (-100). Dropout 0 (a timing of the arithmetic, not of random masks). The
twin is tinylm/bench/twins/seq2seq_transformer.py (``F.scaled_dot_product_attention``)
with ``torch.optim.AdamW``; both optimizers: lr 1e-3, betas (0.9, 0.98), weight decay 0.1
on matrices.

Timing is tinylm/bench/harness.py's (each side in its own process with ``--threads``
threads, alternating rounds). Tokens per step = batch * tgt_len (the target tokens).
``--beam-sentences N`` adds tinylm's beam search (``--beam-width``, the KV cache): N
sentences of the batch decoded at once, up to max_len tokens (an untrained model rarely
emits eos, so this is the longest search), as sentences/s. ``--profile`` adds the step's
split into forward / backward / optimizer and cProfile's top functions.
"""

from __future__ import annotations

import os
import time

import numpy

from tinylm.backend import KERNEL_ENV_VAR, default_rng
from tinylm.bench.gpt import tinylm_step_fn
from tinylm.bench.harness import (Side, add_timing_arguments, compare, default_threads,
                                   profile_report, torch_sides)
from tinylm.bench.twins.seq2seq_transformer import seq2seq_transformer_twin
from tinylm.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from tinylm.optim import AdamW, decay_groups

LR, BETAS, WEIGHT_DECAY = 1e-3, (0.9, 0.98), 0.1
CONFIG_KEYS = ("embd", "heads", "enc_layers", "dec_layers", "max_len", "src_vocab",
               "tgt_vocab", "batch", "src_len", "tgt_len", "dtype", "threads")


def add_arguments(parser) -> None:
    parser.add_argument("--embd", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--enc-layers", type=int, default=3)
    parser.add_argument("--dec-layers", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=32)
    parser.add_argument("--src-vocab", type=int, default=8000)
    parser.add_argument("--tgt-vocab", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64, help="sentence pairs per batch")
    parser.add_argument("--src-len", type=int, default=12, help="source positions (S)")
    parser.add_argument("--tgt-len", type=int, default=11, help="target positions (T)")
    add_timing_arguments(parser)
    parser.add_argument("--beam-sentences", type=int, default=16, metavar="N",
                        help="also time beam search over N sentences (0: skip)")
    parser.add_argument("--beam-width", type=int, default=5)


def build_tinylm(config: dict):
    model_config = Seq2SeqTransformerConfig(
        src_vocab=config["src_vocab"], tgt_vocab=config["tgt_vocab"], n_embd=config["embd"],
        n_head=config["heads"], n_enc_layer=config["enc_layers"],
        n_dec_layer=config["dec_layers"], max_len=config["max_len"], dropout=0.0)
    return Seq2SeqTransformer(model_config).to(dtype=numpy.dtype(config["dtype"]))


def fixed_pairs(config: dict):
    """The one batch both sides train on: src [B, S], src_mask [B, S], tgt_in, tgt_out
    [B, T], rows right-padded to random lengths (seed 0)."""
    rng = default_rng(0)
    B, S, T = config["batch"], config["src_len"], config["tgt_len"]
    src_lengths = rng.integers((S + 1) // 2, S + 1, size=B)
    tgt_lengths = rng.integers((T + 1) // 2, T + 1, size=B)
    src = rng.integers(0, config["src_vocab"], size=(B, S))
    src_mask = numpy.arange(S)[None, :] < src_lengths[:, None]
    tgt_in = rng.integers(0, config["tgt_vocab"], size=(B, T))
    tgt_out = rng.integers(0, config["tgt_vocab"], size=(B, T))
    tgt_out[numpy.arange(T)[None, :] >= tgt_lengths[:, None]] = -100
    return src * src_mask, src_mask, tgt_in, tgt_out


def run(args) -> dict:
    config = {key: getattr(args, key) for key in CONFIG_KEYS}
    config["threads"] = args.threads or default_threads()
    extra = ([("tinylm", {"command": "beam", "sentences": args.beam_sentences,
                          "width": args.beam_width})] if args.beam_sentences else []) + \
        ([("tinylm", {"command": "profile", "steps": args.steps})] if args.profile else [])
    timings = compare(__name__, config, torch_sides(args.no_torch), args.repeat, args.steps,
                      args.batch * args.tgt_len, extra)
    return {"config": {k: config[k] for k in CONFIG_KEYS[:-1]}, "threads": config["threads"],
            "kernels": os.environ.get(KERNEL_ENV_VAR, "auto"), **timings}


def build_side(side: str, config: dict, torch) -> Side:
    """A harness side: tinylm's model with AdamW, or its twin with torch.optim.AdamW."""
    model = build_tinylm(config)
    src, src_mask, tgt_in, tgt_out = fixed_pairs(config)
    if side == "torch":
        twin = seq2seq_transformer_twin(torch, model)
        optimizer = torch.optim.AdamW(decay_groups(list(twin.parameters()), WEIGHT_DECAY),
                                      lr=LR, betas=BETAS)
        batch = [torch.from_numpy(a) for a in (src, tgt_in, tgt_out, src_mask)]

        def torch_step():
            optimizer.zero_grad(set_to_none=True)
            twin(*batch)[1].backward()
            optimizer.step()
        return Side(torch_step, ready={"version": torch.__version__})
    optimizer = AdamW(decay_groups(model.parameters(), WEIGHT_DECAY), lr=LR, betas=BETAS)
    step, phases = tinylm_step_fn(model, optimizer, src, tgt_in, tgt_out, src_mask)

    def handle(command):
        if command["command"] == "beam":
            return beam_speed(model, src, src_mask, command["sentences"], command["width"])
        return profile_report(step, phases, command["steps"])
    return Side(step, handle)


def beam_speed(model, src, src_mask, sentences: int, width: int) -> dict:
    """Sentences/s of beam search (KV cache) over the first ``sentences`` rows of the batch."""
    from tinylm.beam_search import beam_search

    model.eval()
    rows = slice(0, min(sentences, src.shape[0]))
    max_len = model.config.max_len

    def search():
        return beam_search(model.decode_step, model.encode(src[rows], src_mask[rows]),
                           len(src[rows]), bos_id=0, eos_id=1, beam_width=width,
                           max_len=max_len, reorder=model.reorder)
    search()                                                              # warm-up
    start = time.perf_counter()
    results = search()
    seconds = time.perf_counter() - start
    model.train()
    return {"beam_width": width, "beam_sentences": len(results), "beam_max_len": max_len,
            "tinylm_beam_sentences_per_s": round(len(results) / seconds, 2)}
