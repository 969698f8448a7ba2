"""``tinylm bench quantize --run RUN [--settings float32,int8,int4-g32,int4-g64]
[--new-tokens N] [--repeat R] [--json]``: what weight-only quantisation
(tinylm/compress/quantize.py) does to a trained run.

For each setting, from the same float run, in one process:

    S_val_loss, S_val_perplexity   the validation split, as ``tinylm eval RUN`` scores it
    S_weight_bytes                 every parameter's bytes (codes, scales, float tensors)
    S_checkpoint_bytes             the model's .npz as ``tinylm quantize`` writes it
    S_tokens_per_s                 decoding speed, best of R rounds; S_median_tokens_per_s
                                   the median round: ``generate`` of N new tokens after a
                                   one-token prompt, sampled (seed 0), KV cache or recurrent
                                   state as ``tinylm generate`` uses them

Settings are ``float32``, ``int8`` (per channel), ``int8-gG`` and ``int4-gG`` (groups of
G inputs). The rounds interleave the settings (round r times every setting once, in an order
rotated by r), so that a disturbance of the shared machine falls on all of them alike.
Everything runs on ``--threads`` threads (numba and BLAS; default 1): decoding one sequence
is a chain of small products, and on a loaded machine a multi-threaded OpenBLAS team whose
members are descheduled made the GPT forward of a 64-token window take 660 ms instead
of 7 ms (tinylm/kernels/threads.py explains the stall).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time

import numpy

from tinylm.backend import NUMBA_AVAILABLE, default_rng
from tinylm.commands.arguments import positive_int
from tinylm.compress.quantize import quantize_model
from tinylm.evaluate import evaluate_lm
from tinylm.generate import generate
from tinylm.nn.quantized import weight_bytes
from tinylm.train.restore import load_trained
from tinylm.train.setup import prepare_data

DEFAULT_SETTINGS = "float32,int8,int4-g32,int4-g64"


def add_arguments(parser) -> None:
    parser.add_argument("--run", required=True, help="OUT_DIR of a trained GPT or RNN run")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS,
                        help=f"comma-separated (default {DEFAULT_SETTINGS})")
    parser.add_argument("--new-tokens", type=positive_int, default=200,
                        help="tokens generated per timed round (default 200)")
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed rounds")
    parser.add_argument("--prompt", default="\n", help="text the decoding starts from")
    parser.add_argument("--no-eval", action="store_true",
                        help="time the decoding only (no validation loss)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="numba and BLAS threads (default 1: one sequence decodes on "
                             "one core)")


def parse_setting(text: str) -> tuple:
    """'float32' -> (None, None); 'int8' -> (8, None); 'int4-g32' -> (4, 32)."""
    if text == "float32":
        return None, None
    name, _, group = text.partition("-g")
    if name not in ("int8", "int4") or (group and not group.isdigit()):
        raise ValueError(f"setting {text!r} is not float32, int8, int8-gG or int4-gG.")
    return int(name[3:]), int(group) if group else None


def _checkpoint_bytes(model) -> int:
    buffer = io.BytesIO()
    numpy.savez(buffer, **{f"model/{k}": v for k, v in model.state_dict().items()})
    return buffer.getbuffer().nbytes


def _decode_seconds(model, prompt, new_tokens: int) -> float:
    started = time.perf_counter()
    generate(model, prompt, new_tokens, default_rng(0))
    return time.perf_counter() - started


@contextlib.contextmanager
def _threads(threads: int):
    """numba and BLAS on ``threads`` threads within the block, restored after it (the
    benchmark also runs inside the test process)."""
    from threadpoolctl import threadpool_limits
    if NUMBA_AVAILABLE:
        import numba
        saved = numba.get_num_threads()
        numba.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        if NUMBA_AVAILABLE:
            numba.set_num_threads(saved)


def run(args) -> dict:
    with _threads(args.threads):
        return _measure(args)


def _measure(args) -> dict:
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    result = {"run": args.run, "new_tokens": args.new_tokens, "repeat": args.repeat,
              "threads": args.threads}
    models = {}
    for setting in settings:
        models[setting], tokenizer = _prepared(args, setting, result)
    prompt = numpy.asarray([tokenizer.encode(args.prompt)], dtype=numpy.int64)
    for model in models.values():
        _decode_seconds(model, prompt, 8)                      # compile and warm up, untimed
    seconds = {s: [] for s in settings}
    for r in range(args.repeat):
        for setting in settings[r % len(settings):] + settings[:r % len(settings)]:
            seconds[setting].append(_decode_seconds(models[setting], prompt, args.new_tokens))
    for setting, times in seconds.items():
        result[f"{setting}_tokens_per_s"] = round(args.new_tokens / min(times), 1)
        result[f"{setting}_median_tokens_per_s"] = round(
            args.new_tokens / statistics.median(times), 1)
    return result


def _prepared(args, setting: str, result: dict):
    """-> (the run's model in ``setting``, its tokenizer); the model's validation loss and
    sizes go into ``result``."""
    bits, group_size = parse_setting(setting)
    model, tokenizer, cfg = load_trained(args.run, same_data=not args.no_eval)
    if bits is not None:
        quantize_model(model, bits, group_size)
    if not args.no_eval:
        val = evaluate_lm(model, prepare_data(cfg, tokenizer).val, cfg.batch_size,
                          cfg.block_size)
        result.update({f"{setting}_val_loss": round(val["loss"], 5),
                       f"{setting}_val_perplexity": round(val["perplexity"], 3)})
    result.update({f"{setting}_weight_bytes": weight_bytes(model),
                   f"{setting}_checkpoint_bytes": _checkpoint_bytes(model)})
    return model, tokenizer
