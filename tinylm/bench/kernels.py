"""``tinylm bench kernels``: each numba kernel against its plain reference (and PyTorch's CPU
equivalent, when torch is installed) at the sizes training actually uses.

    tinylm bench kernels                  float32, best of 5 after a warm-up
    tinylm bench kernels --json           the same figures as one JSON object
    tinylm bench kernels --quick          rows / 256 (a smoke test, not a measurement)
    tinylm bench kernels --threads 1 --clock cpu    one core, CPU time: comparable figures
                                                    even on a machine other jobs share

Every timing (tinylm/bench/harness.py's ``best_ms``) is the best of ``--repeat`` runs after
one untimed warm-up call (which also compiles or loads the numba code), so compilation never
counts. A slow path stops repeating once it has used ``--budget`` seconds. What each row times:

* embedding backward: dW = scatter-add of dout [N, D] into [V, D]
  (torch: ``zeros(V, D).index_add_(0, ids, dout)``, the same scatter-add);
* cross-entropy: forward and backward over logits [N, V]
  (torch: ``F.cross_entropy`` and ``.backward()``);
* layernorm: forward and backward over x [N, C] (torch: ``F.layer_norm``, ``.backward(dy)``);
* gelu: forward and backward over x [B*T*4C] (torch: ``F.gelu``, ``.backward(dout)``);
* tanh: forward over x [B*T*H] of the MLP language model (torch: ``torch.tanh``);
* attention: causal self-attention forward and backward on a packed qkv [B, T, 3*H*hd]
  (torch: ``F.scaled_dot_product_attention(..., is_causal=True)`` and ``.backward(dy)``);
  the "numba" column is tinylm's CPU path, BLAS products plus numba rows.

Chapter 11 (sections 3 and 4) reads these figures: how each kernel was made fast, and where
the time of a training step goes.
"""

from __future__ import annotations

import os
import time

import numpy

from tinylm.backend import KERNEL_ENV_VAR, NUMBA_AVAILABLE, default_rng, kernel_mode
from tinylm.bench import import_torch
from tinylm.bench.harness import best_ms, set_threads
from tinylm.functional import activations as F_act
from tinylm.functional import attention as functional_attention
from tinylm.functional import cross_entropy as F_ce
from tinylm.functional import embedding as F_emb
from tinylm.functional import layernorm as F_ln
from tinylm.kernels import attention, cross_entropy, gelu, layernorm

# (kernel, sizes) at realistic training sizes: B*T rows of a char-level (V=65) or word-level
# (V=10000) model with C=384 features, and the 4C-wide MLP activations of such a GPT.
CASES = [
    ("embedding", dict(N=12 * 64, D=384, V=65)),
    ("embedding", dict(N=12 * 64, D=384, V=10000)),
    ("embedding", dict(N=64 * 256, D=384, V=65)),
    ("embedding", dict(N=64 * 256, D=384, V=10000)),
    ("cross_entropy", dict(N=64 * 256, V=65)),
    ("cross_entropy", dict(N=20 * 35, V=10000)),
    ("layernorm", dict(N=64 * 256, C=384)),
    ("gelu", dict(size=64 * 256 * 1536, approximate="tanh")),
    ("gelu", dict(size=64 * 256 * 1536, approximate="none")),
    ("tanh", dict(size=32 * 64 * 768)),
    ("attention", dict(B=12, T=64, H=4, hd=32)),
    ("attention", dict(B=16, T=256, H=6, hd=64)),
]
QUICK_SHRINK = 256      # --quick divides the rows (N, B) and element counts (size) by this


def quick_sizes(sizes: dict) -> dict:
    return {k: max(1, v // QUICK_SHRINK) if k in ("N", "B", "size") else v
            for k, v in sizes.items()}


def case_name(kind: str, sizes: dict) -> str:
    return kind + " " + " ".join(f"{k}={v}" for k, v in sizes.items())


def add_arguments(parser) -> None:
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per path (best is kept)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds after which a slow path stops repeating")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--quick", action="store_true",
                        help=f"rows / {QUICK_SHRINK}: a smoke test, not a measurement")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for numba and torch (default: all cores)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="'cpu' times the calling thread's CPU time, which other processes "
                             "on a busy machine do not inflate; needs --threads 1")


# -- each kernel: (reference thunk, dispatching thunk, torch thunk or None) ----------------------

def _embedding(rng, dtype, torch, N, D, V, **_):
    ids = rng.integers(0, V, size=N)
    dout = rng.standard_normal((N, D)).astype(dtype)
    reference = lambda: F_emb.embedding_backward_reference(ids, dout, V)      # noqa: E731
    fast = lambda: F_emb.scatter_add_rows(ids, dout, V)                       # noqa: E731
    if torch is None:
        return reference, fast, None
    t_ids, t_dout = torch.from_numpy(ids), torch.from_numpy(dout)
    return reference, fast, lambda: torch.zeros(V, D, dtype=t_dout.dtype).index_add_(0, t_ids,
                                                                                      t_dout)


def _cross_entropy(rng, dtype, torch, N, V, **_):
    logits = (2.0 * rng.standard_normal((N, V))).astype(dtype)
    targets = rng.integers(0, V, size=N)
    row_grad = numpy.full(N, 1.0 / N, dtype=dtype)

    def run(forward, backward):
        def both():
            _, probs = forward(logits, targets, -100)
            return backward(probs, targets, row_grad, -100)
        return both

    reference = run(F_ce.cross_entropy_forward_reference, F_ce.cross_entropy_backward_reference)
    fast = run(cross_entropy.cross_entropy_forward, cross_entropy.cross_entropy_backward)
    if torch is None:
        return reference, fast, None
    t_logits = torch.from_numpy(logits).requires_grad_()
    t_targets = torch.from_numpy(targets)

    def torch_both():
        t_logits.grad = None
        torch.nn.functional.cross_entropy(t_logits, t_targets).backward()
    return reference, fast, torch_both


def _layernorm(rng, dtype, torch, N, C, **_):
    x = rng.standard_normal((N, C)).astype(dtype)
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    dy = rng.standard_normal((N, C)).astype(dtype)

    def run(forward, backward):
        def both():
            _, mean, rstd = forward(x, gamma, beta, 1e-5)
            return backward(dy, x, mean, rstd, gamma)
        return both

    reference = run(F_ln.layernorm_forward_reference, F_ln.layernorm_backward_reference)
    fast = run(layernorm.layernorm_forward, layernorm.layernorm_backward)
    if torch is None:
        return reference, fast, None
    t_x, t_gamma, t_beta = (torch.from_numpy(a).requires_grad_() for a in (x, gamma, beta))
    t_dy = torch.from_numpy(dy)

    def torch_both():
        for t in (t_x, t_gamma, t_beta):
            t.grad = None
        torch.nn.functional.layer_norm(t_x, (C,), t_gamma, t_beta, 1e-5).backward(t_dy)
    return reference, fast, torch_both


def _gelu(rng, dtype, torch, size, approximate="tanh", **_):
    x = rng.standard_normal(size).astype(dtype)
    dout = rng.standard_normal(size).astype(dtype)

    def run(forward, backward):
        def both():
            forward(x, approximate)
            return backward(dout, x, approximate)
        return both

    reference = run(F_act.gelu_forward_reference, F_act.gelu_backward_reference)
    fast = run(gelu.gelu_forward, gelu.gelu_backward)
    if torch is None:
        return reference, fast, None
    t_x, t_dout = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dout)

    def torch_both():
        t_x.grad = None
        torch.nn.functional.gelu(t_x, approximate=approximate).backward(t_dout)
    return reference, fast, torch_both


def _tanh(rng, dtype, torch, size, **_):
    x = rng.standard_normal(size).astype(dtype)
    reference = lambda: F_act.tanh_reference(x)                               # noqa: E731
    fast = lambda: F_act.tanh_forward(x)[0]                                   # noqa: E731
    if torch is None:
        return reference, fast, None
    t_x = torch.from_numpy(x)
    return reference, fast, lambda: torch.tanh(t_x)


def _attention(rng, dtype, torch, B, T, H, hd, **_):
    qkv = rng.standard_normal((B, T, 3 * H * hd)).astype(dtype)
    dy = rng.standard_normal((B, T, H * hd)).astype(dtype)

    def run(forward, backward):
        def both():
            _, att = forward(qkv, H)
            return backward(dy, qkv, att, H)
        return both

    reference = run(functional_attention.causal_attention_forward_reference,
                    functional_attention.fused_attention_backward_reference)
    fast = run(attention.causal_attention_forward, attention.causal_attention_backward)
    if torch is None:
        return reference, fast, None
    t_qkv = torch.from_numpy(qkv).requires_grad_()
    t_dy = torch.from_numpy(dy).view(B, T, H, hd).transpose(1, 2)

    def torch_both():
        t_qkv.grad = None
        q, k, v = t_qkv.view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        y.backward(t_dy)
    return reference, fast, torch_both


BUILDERS = {"embedding": _embedding, "cross_entropy": _cross_entropy,
            "layernorm": _layernorm, "gelu": _gelu, "tanh": _tanh, "attention": _attention}



def _machine(torch) -> dict:
    info = {"cpus": os.cpu_count(), "numba": NUMBA_AVAILABLE}
    if NUMBA_AVAILABLE:
        import numba
        info["numba_threads"] = numba.get_num_threads()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def run(args) -> dict:
    if not NUMBA_AVAILABLE:
        raise SystemExit("tinylm bench kernels compares the numba kernels with their references; "
                         "pip install numba first.")
    if args.clock == "cpu" and args.threads != 1:
        raise SystemExit("--clock cpu measures one thread's CPU time; add --threads 1.")
    if kernel_mode() == "reference":
        raise SystemExit(f"{KERNEL_ENV_VAR}=reference would time the reference twice; unset it.")
    torch = import_torch(args.no_torch)
    if args.threads:
        set_threads(args.threads, torch)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    dtype = numpy.dtype(args.dtype)
    rng = default_rng(0)
    rows = {}
    for kind, sizes in CASES:
        sizes = quick_sizes(sizes) if args.quick else sizes
        name = case_name(kind, sizes)
        reference, fast, torch_fn = BUILDERS[kind](rng, dtype, torch, **sizes)
        ref_ms = best_ms(reference, args.repeat, args.budget, clock)
        numba_ms = best_ms(fast, args.repeat, args.budget, clock)
        row = {"reference_ms": round(ref_ms, 3), "numba_ms": round(numba_ms, 3),
               "speedup_vs_reference": round(ref_ms / numba_ms, 2)}
        if torch_fn is not None:
            torch_ms = best_ms(torch_fn, args.repeat, args.budget, clock)
            row["torch_ms"] = round(torch_ms, 3)
            row["numba_vs_torch"] = round(torch_ms / numba_ms, 2)
        rows[name] = row if args.json else _describe(row)
    return {"dtype": args.dtype, "clock": args.clock, "machine": _machine(torch), **rows}


def _describe(row: dict) -> str:
    text = (f"reference {row['reference_ms']:9.2f} ms   numba {row['numba_ms']:8.2f} ms "
            f"({row['speedup_vs_reference']:6.1f}x)")
    if "torch_ms" in row:
        text += (f"   torch {row['torch_ms']:8.2f} ms "
                 f"(numba at {row['numba_vs_torch']:.2f}x torch's speed)")
    return text
