"""Which parameters get weight decay: matrices (ndim >= 2: embeddings, Linear weights) do,
vectors (biases, LayerNorm gains and shifts) do not, as in nanoGPT. One rule for tinylm's
optimizers and, since it reads only ``p.data.ndim``, for torch.optim's in the benchmarks and
the parity tests."""


def decay_groups(params, weight_decay: float) -> list:
    """Parameter groups [{"params": matrices, "weight_decay": weight_decay},
    {"params": vectors, "weight_decay": 0.0}], empty groups left out."""
    params = list(params)
    groups = [{"params": [p for p in params if p.data.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.data.ndim < 2], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
