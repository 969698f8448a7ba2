"""GPT on CuPy arrays: the same code, moved to the GPU with ``model.to(device="gpu")``.

Skipped unless CuPy imports and sees a CUDA device. The GPU path runs the array-module
references of every kernel (numba is CPU-only), so it must agree with the CPU to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.backend import gpu_available, to_numpy
from tinylm.generate import generate
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW, clip_grad_norm

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")]

CONFIG = dict(vocab_size=17, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)


def _pair(dtype):
    cpu = GPT(GPTConfig(**CONFIG)).to(dtype=dtype)
    gpu = GPT(GPTConfig(**CONFIG)).to(dtype=dtype, device="gpu")
    return cpu, gpu


def test_gpt_forward_and_gradients_on_gpu_match_cpu(rng):
    import cupy
    cpu, gpu = _pair(np.float64)
    cpu.eval(), gpu.eval()
    idx, targets = rng.integers(0, 17, size=(3, 16)), rng.integers(0, 17, size=(3, 16))
    logits, loss = cpu.forward(idx, targets)
    cpu.backward()
    g_logits, g_loss = gpu.forward(cupy.asarray(idx), cupy.asarray(targets))
    gpu.backward()
    assert isinstance(g_logits, cupy.ndarray)
    np.testing.assert_allclose(to_numpy(g_logits), logits, rtol=1e-9, atol=1e-12)
    assert float(g_loss) == pytest.approx(float(loss), rel=1e-10)
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert isinstance(q.grad, cupy.ndarray), name
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-7, atol=1e-12, err_msg=name)


def test_gpt_trains_on_gpu_with_dropout(rng):
    import cupy
    _, gpu = _pair(np.float32)
    opt = AdamW(gpu.parameters(), lr=1e-2, weight_decay=0.1)
    idx = cupy.asarray(rng.integers(0, 17, size=(4, 16)))
    targets = cupy.asarray(rng.integers(0, 17, size=(4, 16)))
    losses = []
    for _ in range(30):
        _, loss = gpu.forward(idx, targets)
        gpu.backward()
        clip_grad_norm(gpu.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_kv_cache_decoding_on_gpu(rng):
    import cupy
    _, gpu = _pair(np.float64)
    prompt = cupy.asarray(rng.integers(0, 17, size=(2, 3)))
    cached = generate(gpu, prompt, 20, np.random.default_rng(0), top_k=5)
    recomputed = generate(gpu, prompt, 20, np.random.default_rng(0), top_k=5, use_cache=False)
    np.testing.assert_array_equal(cached, recomputed)
