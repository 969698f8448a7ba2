"""PyTorch twin of the Bengio MLP language model (tinylm/models/mlp_lm.py), written the way
the maths says it (embed, concatenate, tanh layer, softmax), with tinylm's parameter names.

tinylm never forms the concatenated window (it projects the embedding table once per
position of the window, tinylm/functional/window_projection.py); the twin does, so the two
compute the same numbers by different routes.
"""

from __future__ import annotations


def mlp_lm_twin_parameters(torch, model) -> dict:
    """tinylm's parameters as leaf tensors that record gradients, under tinylm's names."""
    return {name: torch.tensor(p.data, requires_grad=True)
            for name, p in model.named_parameters()}


def mlp_lm_twin_logits(torch, params: dict, config, idx):
    """idx [B, T] int (a NumPy array) -> logits [B, T, V]. Positions before the first
    token read the padding row ``vocab_size`` of the table, as in tinylm."""
    n, T = config.block_size, idx.shape[1]
    ids = torch.as_tensor(idx)
    padding = torch.full((ids.shape[0], n - 1), config.vocab_size, dtype=ids.dtype)
    emb = params["wte"][torch.cat([padding, ids], dim=1)]                # [B, T+n-1, d]
    ctx = torch.cat([emb[:, k:k + T] for k in range(n)], dim=-1)          # [B, T, n d]
    hidden = torch.tanh(ctx @ params["w_hidden"] + params["b_hidden"])    # [B, T, H]
    logits = hidden @ params["w_out"] + params["b_out"]                   # [B, T, V]
    if "w_direct" in params:
        logits = logits + ctx @ params["w_direct"]                        # Bengio's W x
    return logits
