"""PyTorch twins of tinylm's recurrent layers and language models (Embedding -> RNN/LSTM/GRU
stack -> Linear), and the map from torch's parameters to tinylm's names and layout.

Weight mapping (tinylm/nn/recurrent.py): W_x = weight_ih.T, W_h = weight_hh.T,
b_x = bias_ih, b_h = bias_hh; the LM's head is w_out = head.weight.T, b_out = head.bias.
A twin LM is the tuple (embedding, rnn, head); ``twin_lm_loss`` runs it.
"""

from __future__ import annotations

TORCH_CLASS_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def torch_recurrent_class(torch, kind: str, cell: bool = False):
    """torch.nn.RNN / LSTM / GRU (or the ...Cell) for tinylm's ``kind``."""
    return getattr(torch.nn, TORCH_CLASS_NAMES[kind] + ("Cell" if cell else ""))


def _np(t):
    return t.detach().numpy().copy()      # a copy: load_state_dict may keep the array itself


def tinylm_state_from_torch(module, layers: int, prefix: str = "") -> dict:
    """tinylm parameter names and layout from a torch RNN/LSTM/GRU's parameters."""
    state = {}
    for l in range(layers):
        get = lambda name: _np(getattr(module, f"{name}_l{l}"))  # noqa: E731
        state[f"{prefix}W_x_l{l}"] = get("weight_ih").T
        state[f"{prefix}W_h_l{l}"] = get("weight_hh").T
        state[f"{prefix}b_x_l{l}"], state[f"{prefix}b_h_l{l}"] = get("bias_ih"), get("bias_hh")
    return state


def recurrent_lm_twin(torch, kind: str, V: int, E: int, H: int, L: int, tie: bool = False,
                      dtype: str = "float64", seed: int = 0) -> tuple:
    """(embedding, rnn, head), torch's own initialisation under ``seed``, in ``dtype``."""
    torch.manual_seed(seed)
    to = getattr(torch, dtype)
    emb = torch.nn.Embedding(V, E).to(to)
    rnn = torch_recurrent_class(torch, kind)(E, H, L, batch_first=True).to(to)
    head = torch.nn.Linear(H, V).to(to)
    if tie:
        head.weight = emb.weight
    return emb, rnn, head


def lm_state_from_twin(twin: tuple, layers: int, tie: bool = False) -> dict:
    """The twin's weights as a tinylm recurrent LM's state dict."""
    emb, rnn, head = twin
    state = {"embedding.weight": _np(emb.weight), "b_out": _np(head.bias),
             **tinylm_state_from_torch(rnn, layers, prefix="rnn.")}
    if not tie:
        state["w_out"] = _np(head.weight).T
    return state


def twin_parameters(twin: tuple) -> list:
    """Every parameter of the twin once (a tied head shares the embedding's)."""
    seen = {}
    for module in twin:
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


def twin_lm_loss(torch, twin: tuple, idx, targets, state=None) -> tuple:
    """-> (logits, mean cross-entropy, final state); ``idx``/``targets`` NumPy or torch."""
    emb, rnn, head = twin
    out, state = rnn(emb(torch.as_tensor(idx)), state)
    logits = head(out)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             torch.as_tensor(targets).reshape(-1))
    return logits, loss, state
