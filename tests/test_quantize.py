"""Weight-only quantisation (tinylm/functional/quantize.py, kernels/quantized_matmul.py,
nn/quantized.py, compress/quantize.py): the scales and the error bound, int4 packing, the
numba kernel against the reference, PyTorch's per-channel int8, and whole quantised models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from kernel_helpers import auto_kernels, needs_numba, split  # noqa: F401

from tinylm.backend import to_numpy
from tinylm.compress.quantize import check_settings, quantize_model
from tinylm.functional.quantize import (KERNEL_MAX_ROWS, codes, dequantize,
                                        pack_int4, quantize_int4, quantize_int8,
                                        quantized_embedding_forward, quantized_linear_forward,
                                        unpack_int4, valid_group_sizes)
from tinylm.generate import generate
from tinylm.kernels import quantized_matmul as quantized_kernel
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.models.mlp_lm import MLPLM, MLPConfig
from tinylm.models.rnn_lm import LSTMLM, RecurrentLMConfig
from tinylm.nn.quantized import QuantizedEmbedding, QuantizedLinear, weight_bytes


def _matrix(rng, shape, dtype=np.float32):
    """A weight-like matrix with a few outliers (what makes group-wise scales matter)."""
    M = rng.standard_normal(shape) * 0.02
    M[rng.random(shape) < 0.01] *= 20
    return M.astype(dtype)


QUANTIZERS = [("int8", lambda M, G: quantize_int8(M, G), 127),
              ("int4", lambda M, G: quantize_int4(M, G), 7)]


# -- the scales, the codes and the error bound ----------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_int8_per_channel_scale_is_the_row_maximum_over_127(rng, dtype):
    M = _matrix(rng, (7, 24), dtype)
    qm = quantize_int8(M)
    assert qm.q.dtype == np.int8 and qm.scales.shape == (7, 1) and qm.scales.dtype == dtype
    np.testing.assert_array_equal(qm.scales[:, 0], np.abs(M).max(axis=1) / dtype(127))
    assert np.abs(qm.q).max() == 127                     # each row's largest weight -> +-127
    assert qm.group_size == 24 and qm.bits == 8


@pytest.mark.parametrize("name, quantize, Q", QUANTIZERS)
@pytest.mark.parametrize("group_size", [8, 24])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_weight_is_within_half_a_step_of_its_code(rng, name, quantize, Q, group_size,
                                                         dtype):
    """|M - s q| <= s / 2 (+ the float rounding of s q), codes within [-Q, Q]."""
    for seed in range(5):
        M = _matrix(np.random.default_rng(seed), (9, 48), dtype)
        qm = quantize(M, group_size)
        q = codes(qm)
        assert q.min() >= -Q and q.max() <= Q
        s = np.repeat(qm.scales, group_size, axis=1)                       # [R, C]
        error = np.abs(M - dequantize(qm))
        assert np.all(error <= s / 2 * (1 + 8 * np.finfo(dtype).eps)), name
        groups = np.abs(M).reshape(9, -1, group_size).max(axis=2)
        np.testing.assert_allclose(qm.scales, groups / Q, rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("name, quantize, Q", QUANTIZERS)
def test_codes_and_scales_are_row_major_even_for_a_transposed_weight(rng, name, quantize, Q):
    """A Linear's M = W^T is a transposed view; the kernel needs contiguous rows."""
    qm = quantize(_matrix(rng, (32, 24)).T, 8)
    assert qm.q.flags.c_contiguous and qm.scales.flags.c_contiguous


def test_an_all_zero_group_gets_scale_one_and_codes_zero(rng):
    M = _matrix(rng, (3, 16))
    M[1, :8] = 0
    qm = quantize_int4(M, 8)
    assert qm.scales[1, 0] == 1 and not codes(qm)[1, :8].any()
    assert np.array_equal(dequantize(qm)[1, :8], np.zeros(8, np.float32))


def test_smaller_groups_never_have_larger_errors_on_average(rng):
    M = _matrix(rng, (32, 128))
    errors = [np.abs(M - dequantize(quantize_int4(M, G))).mean() for G in (16, 32, 64, 128)]
    assert errors == sorted(errors)
    assert np.abs(M - dequantize(quantize_int8(M))).mean() < errors[0]


# -- int4 packing ----------------------------------------------------------------------------

def test_int4_packing_round_trips_every_pair_of_codes():
    pairs = np.array([(a, b) for a in range(-7, 8) for b in range(-7, 8)], dtype=np.int8)
    q = pairs.reshape(1, -1)                                               # [1, 450]
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and packed.shape == (1, 225)
    np.testing.assert_array_equal(unpack_int4(packed), q)


def test_int4_layout_low_nibble_first_offset_by_8():
    packed = pack_int4(np.array([[-7, 7, 0, -1]], dtype=np.int8))
    np.testing.assert_array_equal(packed, [[(-7 + 8) | ((7 + 8) << 4), 8 | (7 << 4)]])


def test_int4_bytes_and_size_formula(rng):
    M = _matrix(rng, (10, 64))
    qm = quantize_int4(M, 32)
    assert qm.q.shape == (10, 32) and qm.scales.shape == (10, 2) and qm.shape == (10, 64)
    assert qm.q.nbytes + qm.scales.nbytes == 10 * 64 * (0.5 + 4 / 32)


# -- the product: kernel and reference ------------------------------------------------------

@needs_numba
@pytest.mark.parametrize("name, quantize, Q", QUANTIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 5])
def test_kernel_equals_the_reference(rng, split, name, quantize, Q, dtype, rows):  # noqa: F811
    M = _matrix(rng, (37, 96), dtype)
    for group_size in (16, 96):
        qm = quantize(M, group_size)
        x = rng.standard_normal((rows, 96)).astype(dtype)
        y = quantized_kernel.quantized_matmul(x, qm.q, qm.scales)
        expected = x @ dequantize(qm).T
        tol = {np.float32: 2e-6, np.float64: 1e-13}[dtype]
        np.testing.assert_allclose(y, expected, atol=tol * np.abs(expected).max(), rtol=0)


@needs_numba
@pytest.mark.parametrize("name, quantize, Q", QUANTIZERS)
def test_quantized_linear_kernel_and_blas_paths_agree(rng, auto_kernels, monkeypatch,  # noqa: F811
                                                      name, quantize, Q):
    """Few rows take the kernel, many the dequantise + BLAS reference: the same product."""
    qm = quantize(_matrix(rng, (20, 64)), 32)
    b = rng.standard_normal(20).astype(np.float32)
    x = rng.standard_normal((2, KERNEL_MAX_ROWS + 3, 64)).astype(np.float32)
    few = np.stack([quantized_linear_forward(x[:, t], qm.q, qm.scales, b)       # [2, 20] each
                    for t in range(x.shape[1])], axis=1)
    monkeypatch.setenv("TINYLM_KERNELS", "reference")
    reference = quantized_linear_forward(x, qm.q, qm.scales, b)
    assert reference.shape == (2, KERNEL_MAX_ROWS + 3, 20)
    np.testing.assert_allclose(few, reference, atol=2e-6 * np.abs(reference).max(), rtol=0)
    np.testing.assert_allclose(reference, x @ dequantize(qm).T + b, rtol=1e-5, atol=1e-6)


def test_quantized_linear_refuses_the_wrong_width(rng):
    qm = quantize_int8(_matrix(rng, (4, 8)))
    with pytest.raises(ValueError, match="input has 6 features but the weight expects 8"):
        quantized_linear_forward(np.zeros((2, 6), np.float32), qm.q, qm.scales)


def test_embedding_rows_are_the_dequantised_table_rows(rng):
    table = _matrix(rng, (11, 32))
    for qm in (quantize_int8(table), quantize_int4(table, 16)):
        ids = rng.integers(0, 11, size=(3, 5))
        rows = quantized_embedding_forward(ids, qm.q, qm.scales)
        np.testing.assert_array_equal(rows, dequantize(qm)[ids])


def test_valid_group_sizes():
    assert valid_group_sizes(8, 12) == [1, 2, 3, 4, 6, 12]
    assert valid_group_sizes(4, 200) == [2, 4, 8, 10, 20, 40, 50, 100, 200]


# -- PyTorch's symmetric per-channel int8 ----------------------------------------------------

def test_int8_scales_and_codes_match_pytorch_per_channel_symmetric(rng):
    torch = pytest.importorskip("torch")
    from torch.ao.quantization.observer import PerChannelMinMaxObserver
    M = _matrix(rng, (16, 40))
    observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                        qscheme=torch.per_channel_symmetric,
                                        quant_min=-127, quant_max=127)
    observer(torch.from_numpy(M))
    scales, zero_points = observer.calculate_qparams()
    qm = quantize_int8(M)
    np.testing.assert_allclose(qm.scales[:, 0], scales.numpy(), rtol=1e-7)
    with warnings.catch_warnings():         # PyTorch deprecates its quantized tensors
        warnings.simplefilter("ignore")
        theirs = torch.quantize_per_channel(torch.from_numpy(M), scales, zero_points, 0,
                                            torch.qint8).int_repr().numpy()
    np.testing.assert_array_equal(qm.q, theirs)


# -- whole models ------------------------------------------------------------------------------

def _gpt():
    model = GPT(GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=32, seed=3))
    return model.eval()


def _relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("bits, group_size, tolerance", [(8, None, 0.02), (4, 16, 0.25)])
def test_a_quantized_gpt_gives_logits_close_to_the_float_model(rng, bits, group_size, tolerance):
    model = _gpt()
    idx = rng.integers(0, 23, size=(2, 16))
    expected, _ = model.forward(idx)
    report = quantize_model(model, bits, group_size)
    logits, _ = model.forward(idx)
    assert _relative_error(logits, expected) < tolerance
    assert len(report.layers) == 2 * 4 + 1 and report.layers[-1] == "wte"
    assert report.quantized_bytes == weight_bytes(model) < report.float_bytes


def test_the_gpt_head_stays_tied_to_the_quantized_table(rng):
    """One table: the logits are x wte^T with the same dequantised wte the lookup reads."""
    model = _gpt()
    quantize_model(model, 4, 16)
    assert isinstance(model.wte, QuantizedEmbedding)
    assert [name for name, _ in model.named_parameters()
            if name.startswith("wte")] == ["wte.qweight", "wte.scales"]       # no float copy
    x = rng.standard_normal((3, 32)).astype(np.float32)
    table = model.wte.dequantized()
    np.testing.assert_allclose(model.wte.attend(x), x @ table.T, rtol=1e-5, atol=1e-6)
    ids = np.array([[0, 5, 22]])
    np.testing.assert_array_equal(model.wte.forward(ids), table[ids])


def test_a_quantized_gpt_decodes_the_same_with_and_without_the_kv_cache(rng):
    model = _gpt()
    quantize_model(model, 8)
    prompt = rng.integers(0, 23, size=(1, 4))
    cached = generate(model, prompt, 20, np.random.default_rng(0), greedy=True)
    recomputed = generate(model, prompt, 20, np.random.default_rng(0), greedy=True,
                          use_cache=False)
    np.testing.assert_array_equal(cached, recomputed)


@pytest.mark.parametrize("tie", [False, True])
def test_a_quantized_lstm_lm_gives_logits_close_to_the_float_model(rng, tie):
    config = RecurrentLMConfig(vocab_size=30, n_embd=16, n_hidden=16, n_layer=2,
                               tie_weights=tie, seed=1)
    model = LSTMLM(config).eval()
    idx = rng.integers(0, 30, size=(3, 7))
    expected, _ = model.forward(idx)
    model.reset_state()
    report = quantize_model(model, 8)
    logits, _ = model.forward(idx)
    assert _relative_error(logits, expected) < 0.02
    assert report.layers == (("embedding",) if tie else ("embedding", "w_out"))
    assert isinstance(model.embedding, QuantizedEmbedding)
    assert tie or isinstance(model.w_out, QuantizedLinear)


def test_the_state_dict_round_trips_into_a_freshly_quantized_model(rng):
    model = _gpt()
    quantize_model(model, 4, 16)
    state = model.state_dict()
    assert state["h.0.mlp.c_fc.qweight"].dtype == np.uint8
    fresh = GPT(GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=32, seed=9))
    quantize_model(fresh, 4, 16)
    fresh.load_state_dict(state)
    idx = rng.integers(0, 23, size=(2, 8))
    np.testing.assert_array_equal(fresh.eval().forward(idx)[0], model.forward(idx)[0])


# -- what is refused ----------------------------------------------------------------------------

def test_bits_other_than_8_and_4_are_refused():
    with pytest.raises(ValueError, match="bits=3; choose 8"):
        quantize_model(_gpt(), 3)


def test_a_group_size_that_does_not_divide_names_the_valid_ones():
    model = LSTMLM(RecurrentLMConfig(vocab_size=30, n_embd=20, n_hidden=20, n_layer=1))
    with pytest.raises(ValueError, match=r"does not divide the input widths \[20\].*"
                                         r"Valid group sizes for int4 here: \[2, 4, 10, 20\]"):
        quantize_model(model, 4, 8)
    assert isinstance(model.w_out.data, np.ndarray)               # the model is unchanged


def test_an_odd_int4_group_is_refused():
    with pytest.raises(ValueError, match="int4 groups must be even"):
        check_settings(_gpt(), 4, 1)


def test_quantizing_twice_and_unsupported_families_are_refused():
    model = _gpt()
    quantize_model(model, 8)
    with pytest.raises(ValueError, match="already quantised"):
        quantize_model(model, 4)
    with pytest.raises(ValueError, match="MLPLM has no quantised path"):
        quantize_model(MLPLM(MLPConfig(vocab_size=10)), 8)


def test_a_quantized_model_has_no_backward(rng):
    model = _gpt()
    quantize_model(model, 8)
    idx = rng.integers(0, 23, size=(1, 4))
    model.forward(idx, idx)
    with pytest.raises(RuntimeError, match="weight-only quantised"):
        model.backward()


def test_a_quantized_gpt_runs_on_the_device(fake_gpu, rng):
    """Codes, scales and the reference product on the (fake) device: the host's logits and
    greedy tokens, nothing falling back to the host."""
    host, device = _gpt(), _gpt()
    quantize_model(host, 4, 16)
    quantize_model(device, 4, 16)
    device.to(device="gpu")
    idx = rng.integers(0, 23, size=(2, 8))
    np.testing.assert_allclose(to_numpy(device.forward(fake_gpu.asarray(idx))[0]),
                               host.forward(idx)[0], rtol=1e-4, atol=1e-5)
    prompt = idx[:1, :3]
    np.testing.assert_array_equal(
        generate(device, fake_gpu.asarray(prompt), 10, np.random.default_rng(0), greedy=True),
        generate(host, prompt, 10, np.random.default_rng(0), greedy=True))
