"""``tinylm translate RUN SENTENCE [SENTENCE ...] [--beam K] [--alpha A]
[--attention-png FILE]``

Translate with the best parameters of a ``tinylm train seq2seq`` run: one line of output
per sentence, greedy by default, beam search of width K with the GNMT length penalty
(alpha 0.6) with ``--beam K``. A word (or character) the run's source vocabulary lacks is
read as ``<unk>``: the sentence is still translated, and a note on stderr names each such
word. An empty sentence, or one longer than the run's max_tokens, is an error.
``--attention-png FILE`` draws the attention of the (single) sentence's translation: one
row per output token, one column per source token as the encoder read it.
"""

from __future__ import annotations

import argparse
import sys

from tinylm.commands.arguments import nonnegative_float, positive_int
from tinylm.train.plot import plot_attention
from tinylm.train.translator import attention_of, load_translator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the sentences, the decoding and the optional attention picture."""
    parser.add_argument("checkpoint", help="OUT_DIR of a `tinylm train seq2seq` run")
    parser.add_argument("sentences", nargs="+", metavar="SENTENCE")
    parser.add_argument("--beam", type=positive_int, default=1,
                        help="beam width (1: greedy decoding)")
    parser.add_argument("--alpha", type=nonnegative_float, default=0.6,
                        help="GNMT length-penalty exponent of beam search")
    parser.add_argument("--attention-png", metavar="FILE",
                        help="write the attention heatmap of the translation to FILE")


def run(args) -> int:
    """Print each translation; notes about unknown words go to stderr."""
    if args.attention_png and len(args.sentences) != 1:
        raise ValueError(f"--attention-png draws one translation; give one sentence, not "
                         f"{len(args.sentences)}.")
    translator = load_translator(args.checkpoint)
    for sentence in args.sentences:
        unknown = translator.check_sentence(sentence)
        if unknown:
            print(f"note: {', '.join(repr(w) for w in unknown)} "
                  f"{'is' if len(unknown) == 1 else 'are'} not in the run's source vocabulary "
                  "(not seen often enough in training) and read as <unk>.", file=sys.stderr)
    for line in translator.translate(args.sentences, args.beam, args.alpha):
        print(line)
    if args.attention_png:
        weights, src_tokens, out_tokens = attention_of(translator, args.sentences[0], args.beam)
        path = plot_attention(weights, src_tokens, out_tokens, args.attention_png,
                              title=f"attention: {args.sentences[0][:40]}")
        print(f"attention: {path}", file=sys.stderr)
    return 0
