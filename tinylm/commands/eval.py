"""``tinylm eval CHECKPOINT [--split val|test]``: loss and perplexity on a held-out split,
of the data the run was trained on (checked by name and sha256), encoded with the run's own
tokenizer. For a word-embedding run: the analogy and word-similarity evaluations. For a
seq2seq run (``tinylm train seq2seq``): exact-match accuracy (toy tasks) or corpus BLEU
(translation) of its translations of the split, greedy or ``--beam K``, of the first
``--limit N`` pairs (default: all)."""

from __future__ import annotations

import argparse
import math

from tinylm.backend import array_module_for
from tinylm.commands.arguments import positive_int
from tinylm.evaluate import evaluate_lm
from tinylm.embeddings.evaluation import evaluate_all
from tinylm.train.embedding_run import is_embedding_run, load_word_vectors
from tinylm.train.restore import SEQ2SEQ_MODEL, load_trained, read_run_metadata
from tinylm.train.translator import evaluate_split, load_translator
from tinylm.train.setup import prepare_data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The checkpoint, the split, and optionally the batch size and device."""
    parser.add_argument("checkpoint")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--batch-size", type=positive_int, default=None)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--beam", type=positive_int, default=None,
                        help="seq2seq: beam width (default 1, greedy)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="seq2seq: score the first N pairs of the split only")


def run(args) -> int:
    """Print the split's loss (nats/token) and perplexity; for a word-embedding run, its
    analogy accuracy and word-similarity correlations instead."""
    meta = read_run_metadata(args.checkpoint)
    if meta["model"] == SEQ2SEQ_MODEL:
        return _evaluate_translations(args)
    if args.beam is not None or args.limit is not None:
        raise ValueError("--beam and --limit apply to seq2seq runs; this is a "
                         f"{meta['model']!r} run.")
    if is_embedding_run(meta):
        return _evaluate_vectors(args)
    model, tokenizer, cfg = load_trained(args.checkpoint, args.device, same_data=True)
    data = prepare_data(cfg, tokenizer)
    ids = data.val if args.split == "val" else data.test
    if ids is None:
        raise ValueError(f"dataset {cfg.dataset!r} has no test split; use --split val.")
    result = evaluate_lm(model, ids, args.batch_size or cfg.batch_size, cfg.block_size,
                         xp=array_module_for(args.device))
    if not math.isfinite(result["loss"]):
        raise FloatingPointError(f"the {args.split} loss is {result['loss']}: the model's "
                                 "outputs are not finite.")
    print(f"{args.split}: loss {result['loss']:.4f} nats/token, perplexity "
          f"{result['perplexity']:.2f} over {result['tokens']:,} tokens")
    if tokenizer.type_name != "char":
        print(_per_character(result, tokenizer, ids))
    return 0


def _per_character(result: dict, tokenizer, ids) -> str:
    """The loss per character of the scored text (every target ids[1:]), the figure that
    compares runs with different tokenizers: a token's loss is spread over its characters,
    nats/char = nats/token x tokens / characters."""
    characters = len(tokenizer.decode(ids[1:]))
    per_char = result["loss"] * result["tokens"] / characters
    return (f"        = {per_char:.4f} nats/character ({per_char / math.log(2):.4f} bits) "
            f"over {characters:,} characters, {characters / result['tokens']:.2f} per token")


def _evaluate_vectors(args) -> int:
    """Google analogies (accuracy), WordSim353 and SimLex-999 (Spearman's rho), each over
    the questions or pairs whose words are all in the vocabulary (chapter 05)."""
    if args.split != "val" or args.batch_size is not None:
        raise ValueError("--split and --batch-size apply to language models; word vectors "
                         "are evaluated on the analogy and similarity sets.")
    r = evaluate_all(load_word_vectors(args.checkpoint))
    print(f"analogies: accuracy {_score(r['analogies'])} = {r['analogies_correct']} of "
          f"{r['analogies_total']} questions in the vocabulary (coverage "
          f"{r['analogies_coverage']:.1%})")
    for name in ("wordsim353", "simlex999"):
        print(f"{name}: Spearman {_score(r[name])} over {r[f'{name}_pairs']} pairs in the "
              f"vocabulary (coverage {r[f'{name}_coverage']:.1%})")
    return 0


def _evaluate_translations(args) -> int:
    """Exact match or BLEU of the run's translations of the split (tinylm/train/translator.py)."""
    if args.batch_size is not None or args.device != "cpu":
        raise ValueError("--batch-size and --device apply to language models; a seq2seq run "
                         "is evaluated on the CPU in groups of 256 sentences.")
    beam = args.beam or 1
    r = evaluate_split(load_translator(args.checkpoint, same_data=True), args.split, beam,
                       limit=args.limit or 0)
    decoding = "greedy" if beam == 1 else f"beam {beam}"
    if r["metric"] == "exact":
        correct = round(r["score"] * r["pairs"])
        print(f"{args.split}: exact match {100 * r['score']:.2f} % ({correct:,} of "
              f"{r['pairs']:,} answers), {decoding}")
    else:
        print(f"{args.split}: BLEU {r['score']:.2f} over {r['pairs']:,} sentences, {decoding} "
              f"({r['bleu']})")
    return 0


def _score(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
