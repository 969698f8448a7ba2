"""Writes notebooks/11-efficiency.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_11.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "11-efficiency.ipynb"

CELLS = [
    ("md", r"""# 11 · Efficiency（效率）: where the time goes, fast kernels, GPUs, compression

Companion to `chapters/11-efficiency.md`.

1. Timing a GPT training step honestly: warm-up, best and median, wall time and CPU time
2. Where the time goes: a profiler of a dozen lines, with the numba kernels and without
3. One kernel against its reference: GELU with `TINYLM_KERNELS=reference` and `auto`
4. Host synchronisations, counted on the test suite's fake GPU
5. Compression: a small GPT quantised (int8, int4), pruned and distilled

Set `TINYLM_FAST=1` to run everything with tiny settings (the test suite does). Timings
depend on your machine and on what else runs on it: expect different numbers from the
chapter's, and compare ratios measured in the same run."""),
    ("code", r"""import contextlib
import os
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinylm
from tinylm.backend import NUMBA_AVAILABLE
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW, decay_groups

FAST = os.environ.get("TINYLM_FAST") == "1"
ROOT = Path(tinylm.__file__).resolve().parents[1]
print("fast mode" if FAST else "full mode", "| numba available:", NUMBA_AVAILABLE,
      "| OPENBLAS_NUM_THREADS =", os.environ.get("OPENBLAS_NUM_THREADS", "(not set)"))"""),
    ("md", r"""## 1. Timing a training step

A step is forward, backward and an AdamW update. The first calls compile or load the numba
kernels and allocate memory, so they are not timed. We keep the best step (the least
disturbed) and the median (how disturbed the others were), in wall time and in the
process's CPU time; on a machine that other programs share, wall time also counts their
turns on the cores.

In full mode the shape is the CPU preset of chapter 07 (4 layers, width 128, block 64,
batch 12). Section 2 of the chapter counts its work: about 1.72 MFLOP per token forward,
three times that for a training step."""),
    ("code", r"""shape = (dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch=8) if FAST else
         dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch=12))
V = 65


def make_step(shape, seed=0):
    config = GPTConfig(vocab_size=V, block_size=shape["block_size"], n_layer=shape["n_layer"],
                       n_head=shape["n_head"], n_embd=shape["n_embd"], dropout=0.0, seed=seed)
    model = GPT(config)
    opt = AdamW(decay_groups(model.parameters(), 0.1), lr=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(0)
    idx = rng.integers(0, V, size=(shape["batch"], shape["block_size"]))
    targets = rng.integers(0, V, size=(shape["batch"], shape["block_size"]))

    def step():
        model.forward(idx, targets)
        model.backward()
        opt.step()
        opt.zero_grad()
    return model, step


def time_steps(step, n, warmup=2):
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return np.array(wall), np.array(cpu)


def step_flops(shape):
    L, D, T = shape["n_layer"], shape["n_embd"], shape["block_size"]
    forward_per_token = 2 * (12 * L * D * D + D * V) + 4 * L * T * D
    return 3 * forward_per_token * shape["batch"] * T


model, step = make_step(shape)
wall, cpu = time_steps(step, 5 if FAST else 10)
flops = step_flops(shape)
print(f"{model.num_parameters():,} parameters, {flops / 1e9:.3f} GFLOP per step")
print(f"wall: best {1e3 * wall.min():.1f} ms, median {1e3 * np.median(wall):.1f} ms")
print(f"CPU:  best {1e3 * cpu.min():.1f} ms, median {1e3 * np.median(cpu):.1f} ms "
      f"-> {flops / cpu.min() / 1e9:.1f} GFLOP/s of CPU time")"""),
    ("md", r"""## 2. Where the time goes

A profiler needs only a timer around each part. `wrap` replaces a function (or a module's
`forward`/`backward`) by a version that adds its CPU time to a bucket, and `unwrap_all`
puts the originals back. Each part is wrapped where the model looks it up: the linear
layers and layer norms are module instances, the attention core, GELU, embeddings and
cross-entropy are functional pairs imported by the modules that call them. "other" is what
is left of the step: residual additions, Python and NumPy glue."""),
    ("code", r"""import tinylm.functional.activations as activations
import tinylm.models.base as base
import tinylm.models.gpt as gpt_module
import tinylm.nn.attention as attention_module

PARTS = ["attention projections", "attention core", "MLP products", "GELU", "layer norm",
         "head, embeddings, loss", "AdamW", "other"]


class Profiler:
    def __init__(self):
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.undo = []

    def wrap(self, owner, name, part):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] += time.process_time() - start
        self.undo.append((owner, name, original, name in vars(owner)))
        object.__setattr__(owner, name, timed)

    def wrap_pair(self, owner, stem, part):
        for suffix in ("forward", "backward"):
            self.wrap(owner, stem + suffix, part)

    def unwrap_all(self):
        for owner, name, original, was_own in reversed(self.undo):
            if was_own:                      # a module's function: put it back
                object.__setattr__(owner, name, original)
            else:                            # an instance's method: drop the wrapper
                object.__delattr__(owner, name)
        self.undo.clear()
"""),
    ("md", r"""Now profile the same step with the kernels (`auto`) and with the plain NumPy references
(`reference`). `TINYLM_KERNELS` is read at every call, so it can change between runs in one
process."""),
    ("code", r"""rng = np.random.default_rng(0)
step_inputs = (rng.integers(0, V, size=(shape["batch"], shape["block_size"])),
               rng.integers(0, V, size=(shape["batch"], shape["block_size"])))


def profile(kernels, n):
    os.environ["TINYLM_KERNELS"] = kernels           # read by every dispatch, at every call
    model, _ = make_step(shape)
    opt = AdamW(decay_groups(model.parameters(), 0.1), lr=1e-3, betas=(0.9, 0.99))
    prof = Profiler()
    for block in model.h:
        for lin in (block.attn.c_attn, block.attn.c_proj):
            prof.wrap_pair(lin, "", "attention projections")
        for lin in (block.mlp.c_fc, block.mlp.c_proj):
            prof.wrap_pair(lin, "", "MLP products")
        for norm in (block.ln_1, block.ln_2):
            prof.wrap_pair(norm, "", "layer norm")
    prof.wrap_pair(model.ln_f, "", "layer norm")
    prof.wrap_pair(attention_module, "attention_heads_", "attention core")
    prof.wrap_pair(activations, "gelu_", "GELU")
    for stem in ("linear_", "embedding_", "learned_positional_"):
        prof.wrap_pair(gpt_module, stem, "head, embeddings, loss")
    prof.wrap_pair(base, "cross_entropy_", "head, embeddings, loss")
    total = 0.0
    try:
        for i in range(n + 2):                       # the first two steps are a warm-up
            if i == 2:
                prof.seconds, total = dict.fromkeys(PARTS, 0.0), 0.0
            start = time.process_time()
            model.forward(*step_inputs)
            model.backward()
            t = time.process_time()
            opt.step()
            opt.zero_grad()
            prof.seconds["AdamW"] += time.process_time() - t
            total += time.process_time() - start
    finally:
        prof.unwrap_all()
        os.environ.pop("TINYLM_KERNELS")
    parts = {p: 1e3 * s / n for p, s in prof.seconds.items()}
    parts["other"] = max(0.0, 1e3 * total / n - sum(parts.values()))
    return parts, 1e3 * total / n


results = {mode: profile(mode, 3 if FAST else 8) for mode in ("auto", "reference")}
for mode, (parts, total) in results.items():
    print(f"{mode:>9}: {total:7.2f} CPU ms per step   " +
          "  ".join(f"{p} {100 * v / total:.0f}%" for p, v in parts.items()))
print(f"the kernels make the step {results['reference'][1] / results['auto'][1]:.2f} times "
      "as fast")

fig, ax = plt.subplots(figsize=(9, 2.6))
for row, (mode, (parts, total)) in enumerate(results.items()):
    left = 0.0
    for i, (part, ms) in enumerate(parts.items()):
        ax.barh(row, ms, left=left, color=plt.cm.tab10(i), label=part if row == 0 else None)
        left += ms
ax.set_yticks([0, 1], ["numba kernels", "reference"])
ax.invert_yaxis()
ax.set_xlabel("CPU ms per training step")
ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.35))
plt.tight_layout(); plt.show()"""),
    ("md", r"""**Amdahl's law.** If a part takes a fraction $f$ of the step and becomes $s$ times
faster, the step becomes $1/((1-f) + f/s)$ times faster. The matrix products are BLAS's in
both runs and barely change, so they cap what any kernel can buy:"""),
    ("code", r"""parts, total = results["reference"]
products = parts["attention projections"] + parts["MLP products"]
print(f"matrix products: {100 * products / total:.0f}% of the reference step; "
      f"infinitely fast everything-else would give at most {total / products:.1f}x")"""),
    ("md", r"""## 3. One kernel against its reference

`tinylm.functional.activations.gelu_forward` is the function every model calls. It asks
`use_numba(x)` (in `tinylm/backend.py`) whether the numba kernel may run: numba must be
installed, `x` a NumPy array, and `TINYLM_KERNELS` not `reference`. The reference is the
readable specification; the kernel must agree with it to float32 rounding."""),
    ("code", r"""from tinylm.functional.activations import gelu_backward, gelu_forward

rng = np.random.default_rng(1)
size = 200_000 if FAST else 12 * 64 * 512 * 4
x = rng.standard_normal(size).astype(np.float32)
dout = rng.standard_normal(size).astype(np.float32)


def gelu_both():
    y, cache = gelu_forward(x, "tanh")
    return y, gelu_backward(dout, cache)


def best_cpu_ms(fn, repeat=5):
    fn()                                              # warm-up: loads the compiled kernel
    best = np.inf
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return 1e3 * best


outputs, times = {}, {}
for mode in ("reference", "auto"):
    os.environ["TINYLM_KERNELS"] = mode
    times[mode] = best_cpu_ms(gelu_both)
    outputs[mode] = gelu_both()
os.environ.pop("TINYLM_KERNELS")
for name, i in (("forward", 0), ("backward", 1)):
    a, b = outputs["auto"][i], outputs["reference"][i]
    print(f"{name}: largest difference {np.abs(a - b).max():.1e} "
          f"(largest value {np.abs(b).max():.1f})")
print(f"{size:,} numbers: reference {times['reference']:.2f} ms, kernel {times['auto']:.2f} ms "
      f"-> {times['reference'] / times['auto']:.1f}x")"""),
    ("md", r"""## 4. Host synchronisations, counted

On a GPU, `float(loss)`, `bool(x.max() < n)` or a boolean-mask index make the host wait
until the device has finished everything queued so far. The test suite has a CPU stand-in
for CuPy (`tests/fake_cupy/__init__.py`) that records every such synchronisation with the
tinylm line that asked. It is test code, not part of the installed library, so this cell
runs only in a checkout of the repository; it puts the fake where `tinylm.backend` keeps its
`cupy`, counts, and puts the real one back.

The training loop checks each batch's ids on the host before moving them, and runs the step
inside `ids_checked_on_host`, so the model's own range checks need not read the device. We
count a step both ways."""),
    ("code", r"""import tinylm.backend as backend
from tinylm.functional.embedding import ids_checked_on_host
from tinylm.models.bert import BERT, BERTConfig
from tinylm.models.classifier import ClassifierConfig, SequenceClassifier
from tinylm.models.seq2seq_rnn import Seq2SeqRNN, Seq2SeqRNNConfig
from tinylm.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from tinylm.optim import clip_grad_norm

TESTS = ROOT / "tests"


@contextlib.contextmanager
def fake_gpu():
    sys.path.insert(0, str(TESTS))
    import fake_cupy
    saved_cupy, saved_modules = backend.cupy, dict(sys.modules)
    backend.cupy = fake_cupy
    sys.modules.update(fake_cupy.cupyx_modules())
    try:
        yield fake_cupy
    finally:
        backend.cupy = saved_cupy
        for name in fake_cupy.cupyx_modules():
            if name in saved_modules:
                sys.modules[name] = saved_modules[name]
            else:
                sys.modules.pop(name, None)
        sys.path.remove(str(TESTS))


def count_syncs(fake, model, inputs, checked_on_host):
    model = model.to(device="gpu")
    opt = AdamW(model.parameters(), lr=1e-3)
    inputs = {k: fake.asarray(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
    counts = []
    for _ in range(2):
        fake.syncs.clear()
        with ids_checked_on_host() if checked_on_host else contextlib.nullcontext():
            model.forward(**inputs)
            model.backward()
            clip_grad_norm(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
        counts.append(len(fake.syncs))
    return counts[-1], fake.syncs.summary()


if (TESTS / "fake_cupy" / "__init__.py").exists():
    rng = np.random.default_rng(0)
    B, T = 3, 6
    gpt_inputs = {"idx": rng.integers(0, V, size=(B, T)), "targets": rng.integers(0, V, size=(B, T))}
    targets = np.where(rng.random((B, T)) < 0.4, rng.integers(0, V, size=(B, T)), -100)
    targets[:, 0] = 1
    bert_inputs = {"ids": rng.integers(0, V, size=(B, T)), "targets": targets,
                   "mask": np.ones((B, T), bool), "nsp_targets": rng.integers(0, 2, size=B),
                   "segments": (np.arange(T) >= 3)[None].repeat(B, 0).astype(np.int64)}
    mask = np.ones((B, T), bool)
    mask[0, -3:] = False                                  # one padded row
    classifier_inputs = {"ids": rng.integers(0, V, size=(B, T)), "mask": mask,
                         "labels": rng.integers(0, 3, size=B)}
    tgt_out = rng.integers(0, V + 2, size=(B, T))
    tgt_out[2, -1] = -100                                 # target padding
    seq2seq_inputs = {"src": rng.integers(0, V, size=(B, T)), "src_mask": mask,
                      "tgt_in": rng.integers(0, V + 2, size=(B, T)), "tgt_out": tgt_out}
    tiny_bert = dict(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0)
    builders = {
        "GPT": (lambda: GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2,
                                      n_embd=8)), gpt_inputs),
        "BERT": (lambda: BERT(BERTConfig(**tiny_bert, next_sentence=True)), bert_inputs),
        "classifier on BERT": (lambda: SequenceClassifier(ClassifierConfig(
            backbone="bert", backbone_config=tiny_bert, n_classes=3, pooling="first",
            dropout=0.0)), classifier_inputs),
        "Transformer encoder-decoder": (lambda: Seq2SeqTransformer(Seq2SeqTransformerConfig(
            src_vocab=V, tgt_vocab=V + 2, n_embd=8, n_head=2, n_enc_layer=1, n_dec_layer=1,
            max_len=8, dropout=0.0)), seq2seq_inputs),
        "RNN encoder-decoder": (lambda: Seq2SeqRNN(Seq2SeqRNNConfig(
            src_vocab=V, tgt_vocab=V + 2, n_embd=4, n_hidden=6, cell="gru",
            attention="general")), seq2seq_inputs)}
    with fake_gpu() as fake:
        for name, (build, inputs) in builders.items():
            on_device, _ = count_syncs(fake, build(), inputs, False)
            on_host, summary = count_syncs(fake, build(), inputs, True)
            print(f"{name}: {on_device} synchronisations per step with the ids checked on "
                  f"the device, {on_host} with them checked on the host")
            if on_host:
                print(summary)
else:
    print("tests/fake_cupy is not here (an installed tinylm without its tests): skipped")"""),
    ("md", r"""With the ids checked on the host, GPT's step never waits for the device. What is left
elsewhere is data-dependent: BERT's masked-language-model head runs on the masked
positions only, so the host must know how many there are (`nonzero`; chapter 11,
exercise 4), and the RNN encoder-decoder groups its sources by length.

## 5. Compression: a small GPT trained here, then quantised, pruned and distilled

Chapter 11, sections 7-9. A character GPT is trained on Tiny Shakespeare for a few hundred
steps (a few dozen in fast mode); every compression below is measured on its validation
loss. In fast mode the teacher has barely begun to learn, so the comparisons mean little
there: run without `TINYLM_FAST` to see the chapter's picture."""),
    ("code", r"""from tinylm.data import load_text
from tinylm.data.tokenizers import CharTokenizer
from tinylm.data.batching import RandomWindowBatcher
from tinylm.evaluate import evaluate_lm
from tinylm.optim import AdamW

text = load_text("tinyshakespeare")
chars = CharTokenizer.from_text(text)
ids = np.asarray(chars.encode(text), dtype=np.int64)
cut = int(0.9 * len(ids))
train_ids, val_ids = ids[:cut], ids[cut:cut + (20_000 if FAST else 111_540)]
steps = 40 if FAST else 600

def train_gpt(config, steps, distill_from=None, temperature=2.0, alpha=0.5, seed=0):
    model = GPT(GPTConfig(vocab_size=chars.vocab_size, **config, seed=seed))
    optimizer = AdamW(model.parameters(), lr=2e-3)
    batches = RandomWindowBatcher(train_ids, batch_size=12, block_size=config["block_size"],
                                  seed=seed)
    for _ in range(steps):
        batch = batches.next_batch()
        if distill_from is None:
            model.forward(batch.x, batch.y)
            model.backward()
        else:
            student_logits, hard = model.forward(batch.x, batch.y)
            teacher_logits, _ = distill_from.forward(batch.x)
            soft, cache = distillation_forward(student_logits, teacher_logits, temperature)
            dsoft, _ = distillation_backward(alpha, cache)
            model.backward_from_logits(dsoft + (1 - alpha) * softmax_minus_onehot(
                student_logits, batch.y))
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()

def softmax_minus_onehot(logits, targets):
    # the gradient of the mean cross-entropy with respect to the logits
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.put_along_axis(p, targets[..., None], np.take_along_axis(p, targets[..., None], -1) - 1, -1)
    return p / targets.size

def val_loss(model):
    return evaluate_lm(model, val_ids, batch_size=32, block_size=64)["loss"]

from tinylm.functional.distillation import distillation_backward, distillation_forward
teacher_config = dict(block_size=64, n_layer=2 if FAST else 4, n_head=4, n_embd=64 if FAST else 128)
teacher = train_gpt(teacher_config, steps)
print(f"teacher: {teacher.num_parameters():,} parameters, val loss {val_loss(teacher):.4f}")"""),
    ("md", r"""**Quantisation.** int8 per output channel and int4 in groups of 32: the error of each
weight is at most half its scale, and the loss barely moves at int8."""),
    ("code", r"""import copy
from tinylm.compress.quantize import quantize_model
from tinylm.functional.quantize import dequantize, quantize_int4, quantize_int8

W = teacher.h[0].mlp.c_fc.weight.data.T                # [out, in], a row per output channel
for name, qm in (("int8", quantize_int8(W)), ("int4 G=32", quantize_int4(W, 32))):
    error = np.abs(dequantize(qm) - W)
    bound = np.repeat(qm.scales, qm.group_size, axis=1) / 2
    print(f"{name}: largest error {error.max():.2e}, every error within s/2: "
          f"{bool((error <= bound + 1e-7).all())}")
for bits, group in ((8, None), (4, 32)):
    quantised = copy.deepcopy(teacher)
    report = quantize_model(quantised, bits, group)
    print(f"{report}; val loss {val_loss(quantised):.4f}")"""),
    ("md", r"""**Pruning.** Global magnitude pruning at several sparsities, without recovery: the
loss stays flat up to about half the weights and then climbs."""),
    ("code", r"""from tinylm.compress.prune import prune, weight_sparsity

sparsities = [0.0, 0.3, 0.5, 0.7, 0.9]
losses = []
for sparsity in sparsities:
    pruned = copy.deepcopy(teacher)
    prune(pruned, sparsity)
    losses.append(val_loss(pruned))
    print(f"sparsity {sparsity:.1f}: {weight_sparsity(pruned):.3f} of the block weights zero, "
          f"val loss {losses[-1]:.4f}")
plt.figure(figsize=(5, 3))
plt.plot(sparsities, losses, "o-")
plt.xlabel("sparsity (block weights removed)")
plt.ylabel("validation loss (nats/char)")
plt.title("magnitude pruning, no recovery")
plt.tight_layout()
plt.show()"""),
    ("md", r"""**Distillation.** The soft-target loss and its hand-written gradient pass the float64
gradient check; then a student of half the width learns from the teacher's distribution
and from the data, against the same student trained on the data alone for the same steps."""),
    ("code", r"""rng = np.random.default_rng(0)
s_logits, t_logits = rng.normal(size=(6, 11)), rng.normal(size=(6, 11))
loss, cache = distillation_forward(s_logits, t_logits, 2.0)
analytic, _ = distillation_backward(1.0, cache)
h = 1e-6
numeric = np.zeros_like(s_logits)
for index in np.ndindex(*s_logits.shape):
    bumped = s_logits.copy(); bumped[index] += h
    up = float(distillation_forward(bumped, t_logits, 2.0)[0])
    bumped[index] -= 2 * h
    numeric[index] = (up - float(distillation_forward(bumped, t_logits, 2.0)[0])) / (2 * h)
print(f"distillation loss {float(loss):.4f}; gradient vs finite differences: relative error "
      f"{np.abs(analytic - numeric).max() / np.abs(numeric).max():.1e}")

student_config = dict(block_size=64, n_layer=1 if FAST else 2, n_head=4, n_embd=32 if FAST else 64)
alone = train_gpt(student_config, steps, seed=1)
taught = train_gpt(student_config, steps, distill_from=teacher, seed=1)
print(f"student ({alone.num_parameters():,} parameters) after {steps} steps: "
      f"from the data alone {val_loss(alone):.4f}, distilled {val_loss(taught):.4f} "
      f"(the teacher: {val_loss(teacher):.4f})")"""),
    ("md", r"""A distilled step also runs the teacher's forward, so it costs more than a plain step:
chapter 11, section 9 compares the two at equal compute too. Data parallelism needs several
processes (`mpiexec -n 2 tinylm train ...`), so it is in the chapter (section 10), not in a
notebook kernel."""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
