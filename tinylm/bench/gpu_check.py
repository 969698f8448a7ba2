"""The GPU check (``make gpu-check``): on a machine with an NVIDIA GPU and CuPy, everything
the fake device of the test suite stands in for, on the real device, in under 6 minutes.

    python -m tinylm.bench.gpu_check [--json PATH] [--skip-tests]

1. the ``gpu``-marked tests (tests/test_gpu.py), where a skip fails;
2. every model family's training step on CuPy: the float64 loss and every gradient against
   the host's, then float32 AdamW steps with dropout whose losses must stay finite;
3. every gradient-check case of ``tinylm gradcheck`` on the device: it must pass, and a case
   without random draws must give the host's errors;
4. GPT's training throughput at the ``shakespeare-char`` preset's shape (float32, B=64,
   T=256, 6 layers of 384), tokens per second over timed steps after a warm-up;
5. KV-cache decoding equal to full recomputation on the device;
6. gradient determinism: the same batch twice gives the same gradients (cuRAND and atomic
   scatter-adds may make them differ in the last bits; the largest difference is reported).

Every figure goes to standard output as JSON (and to ``--json PATH``); the exit status is 0
when every check passed, 1 when one failed, 2 when there is no GPU (with the reason).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy

from tinylm.backend import gpu_unavailable_reason, to_numpy

NO_GPU_EXIT = 2
REPO = Path(__file__).resolve().parents[2]


def _families():
    """(name, float64 model builder, batch builder) for every trainable family."""
    from tinylm.models.bert import BERT, BERTConfig
    from tinylm.models.classifier import ClassifierConfig, SequenceClassifier
    from tinylm.models import get_model_class
    from tinylm.models.seq2seq_rnn import Seq2SeqRNN, Seq2SeqRNNConfig
    from tinylm.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig

    V, B, T = 50, 8, 16
    rng = numpy.random.default_rng(0)
    ids = lambda *shape, high=V: rng.integers(0, high, size=shape)  # noqa: E731
    lm = {"gpt": dict(block_size=T, n_layer=2, n_head=2, n_embd=32, dropout=0.1),
          "mlp": dict(block_size=4, n_embd=16, n_hidden=32, dropout=0.1),
          "rnn": dict(n_embd=16, n_hidden=32), "lstm": dict(n_embd=16, n_hidden=32),
          "gru": dict(n_embd=16, n_hidden=32)}
    cases = [(name, lambda n=name, c=c: get_model_class(n).from_config(dict(c, vocab_size=V)),
              {"idx": ids(B, T), "targets": ids(B, T)}) for name, c in lm.items()]
    masked = numpy.where(rng.random((B, T)) < 0.2, ids(B, T), -100)
    masked[:, 0] = 1
    mask = numpy.ones((B, T), bool)
    mask[0, -4:] = False
    bert = dict(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
    cases += [
        ("bert", lambda: BERT(BERTConfig(**bert, next_sentence=True)),
         {"ids": ids(B, T), "targets": masked, "mask": mask, "nsp_targets": ids(B, high=2)}),
        ("seq2seq-rnn", lambda: Seq2SeqRNN(Seq2SeqRNNConfig(src_vocab=V, tgt_vocab=V,
                                                            n_embd=16, n_hidden=32)),
         {"src": ids(B, T), "tgt_in": ids(B, T), "tgt_out": ids(B, T), "src_mask": mask}),
        ("seq2seq-transformer", lambda: Seq2SeqTransformer(Seq2SeqTransformerConfig(
            src_vocab=V, tgt_vocab=V, n_embd=32, n_head=2, n_enc_layer=1, n_dec_layer=1,
            max_len=T)),
         {"src": ids(B, T), "tgt_in": ids(B, T), "tgt_out": ids(B, T), "src_mask": mask}),
        ("classifier-bert", lambda: SequenceClassifier(ClassifierConfig(
            backbone="bert", backbone_config=bert, n_classes=3)),
         {"ids": ids(B, T), "mask": mask, "labels": ids(B, high=3)}),
    ]
    return cases


def _on_device(args: dict) -> dict:
    import cupy
    return {k: cupy.asarray(v) if isinstance(v, numpy.ndarray) else v for k, v in args.items()}


def _rel(a, b) -> float:
    a, b = to_numpy(a).astype(numpy.float64), numpy.asarray(b, dtype=numpy.float64)
    return float(numpy.max(numpy.abs(a - b), initial=0.0) / max(numpy.max(numpy.abs(b),
                                                                           initial=0.0), 1e-30))


def check_family(build, args: dict) -> dict:
    """float64 loss and gradients on the device against the host (eval mode: no dropout),
    then five float32 AdamW steps with dropout on the device."""
    from tinylm.optim import AdamW, clip_grad_norm
    host, device = build().to(numpy.float64).eval(), build().to(numpy.float64, "gpu").eval()
    _, loss_h = host.forward(**args)
    host.backward()
    _, loss_d = device.forward(**_on_device(args))
    device.backward()
    grad_rel = max(_rel(q.grad, p.grad) for (_, p), (_, q) in
                   zip(host.named_parameters(), device.named_parameters()))
    model = build().to(numpy.float32, "gpu").train()
    opt = AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        _, loss = model.forward(**_on_device(args))
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    loss_rel = abs(float(loss_d) - float(loss_h)) / abs(float(loss_h))
    return {"loss_rel_diff": loss_rel, "max_grad_rel_diff": grad_rel, "float32_losses": losses,
            "passed": loss_rel < 1e-9 and grad_rel < 1e-7 and all(map(math.isfinite, losses))}


def check_gradients_on_device() -> dict:
    """Every gradient-check case on the device; the host runs the references too."""
    from tinylm.commands.gradcheck import discover_cases
    os.environ["TINYLM_KERNELS"] = "reference"
    failed, mismatched, worst = [], [], 0.0
    for case in discover_cases():
        host, device = case.run(), case.run(device="gpu")
        worst = max(worst, device.max_rel_error)
        if not device.passed:
            failed.append(case.name)
        elif not case.seeded and any(abs(h.rel_error - d.rel_error) > 1e-6 * h.rel_error + 1e-12
                                     for h, d in zip(host.tensors, device.tensors)):
            mismatched.append(case.name)
    os.environ.pop("TINYLM_KERNELS")
    return {"cases": len(discover_cases()), "failed": failed, "differ_from_host": mismatched,
            "worst_rel_error": worst, "passed": not failed and not mismatched}


def _shakespeare_gpt(dtype, dropout=None):
    from tinylm.models.gpt import GPT, GPTConfig
    from tinylm.train.presets import get_preset
    config = dict(get_preset("shakespeare-char")["model_config"], vocab_size=65)
    if dropout is not None:
        config["dropout"] = dropout
    return GPT(GPTConfig(**config)).to(dtype, "gpu")


def gpt_throughput(steps: int = 10, warmup: int = 3) -> dict:
    """Training tokens per second at the shakespeare-char preset's shape (batch 64)."""
    import cupy
    from tinylm.optim import AdamW, clip_grad_norm
    from tinylm.train.presets import get_preset
    batch = get_preset("shakespeare-char")["train"]["batch_size"]
    model = _shakespeare_gpt(numpy.float32)
    T = model.config.block_size
    opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    rng = numpy.random.default_rng(0)
    x, y = (cupy.asarray(rng.integers(0, 65, size=(batch, T))) for _ in range(2))

    def step():
        _, loss = model.forward(x, y)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return loss
    for _ in range(warmup):
        step()
    cupy.cuda.Device().synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    cupy.cuda.Device().synchronize()
    seconds = (time.perf_counter() - start) / steps
    return {"shape": {"batch": batch, "block": T, "n_layer": model.config.n_layer,
                      "n_embd": model.config.n_embd}, "ms_per_step": 1e3 * seconds,
            "tokens_per_s": batch * T / seconds, "last_loss": float(loss),
            "passed": math.isfinite(float(loss))}


def kv_cache_equality() -> dict:
    import cupy
    from tinylm.generate import generate
    model = _shakespeare_gpt(numpy.float64, dropout=0.0).eval()
    prompt = cupy.asarray(numpy.random.default_rng(1).integers(0, 65, size=(2, 8)))
    cached = generate(model, prompt, 24, numpy.random.default_rng(0), top_k=10)
    full = generate(model, prompt, 24, numpy.random.default_rng(0), top_k=10, use_cache=False)
    return {"tokens": int(cached.size), "passed": bool(numpy.array_equal(cached, full))}


def gradient_determinism() -> dict:
    """The same model and batch twice: are the gradients bitwise equal?"""
    import cupy
    model = _shakespeare_gpt(numpy.float32, dropout=0.0)
    rng = numpy.random.default_rng(2)
    x, y = (cupy.asarray(rng.integers(0, 65, size=(8, model.config.block_size)))
            for _ in range(2))
    grads = []
    for _ in range(2):
        model.zero_grad()
        model.forward(x, y)
        model.backward()
        grads.append([to_numpy(p.grad).copy() for p in model.parameters()])
    worst = max(_rel(a, b) for a, b in zip(*grads))
    return {"bitwise_equal": worst == 0.0, "max_rel_diff": worst, "passed": worst < 1e-5}


def gpu_tests() -> dict:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-m", "gpu",
                             str(REPO / "tests" / "test_gpu.py")], cwd=REPO,
                            env=dict(os.environ, TINYLM_REQUIRE_GPU="1"),
                            capture_output=True, text=True)
    tail = (result.stdout + result.stderr).strip().splitlines()[-1:]
    return {"returncode": result.returncode, "summary": tail, "passed": result.returncode == 0}


def run_checks(skip_tests: bool = False) -> dict:
    import cupy
    report = {"cupy": cupy.__version__,
              "device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()}
    started = time.perf_counter()
    if not skip_tests:
        report["gpu_tests"] = gpu_tests()
    report["families"] = {name: check_family(build, args) for name, build, args in _families()}
    report["gradcheck"] = check_gradients_on_device()
    report["gpt_throughput"] = gpt_throughput()
    report["kv_cache"] = kv_cache_equality()
    report["determinism"] = gradient_determinism()
    report["seconds"] = time.perf_counter() - started
    report["passed"] = all(v["passed"] for k, v in report.items()
                           if isinstance(v, dict) and "passed" in v) and all(
        f["passed"] for f in report["families"].values())
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinylm.bench.gpu_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the report here")
    parser.add_argument("--skip-tests", action="store_true",
                        help="leave out the pytest run of the gpu tests")
    args = parser.parse_args(argv)
    reason = gpu_unavailable_reason()
    if reason is not None:
        print(f"gpu_check: no GPU to check: {reason}", file=sys.stderr)
        return NO_GPU_EXIT
    report = run_checks(args.skip_tests)
    text = json.dumps(report, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
