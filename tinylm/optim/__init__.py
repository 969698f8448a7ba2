"""Optimizers (layer 5): how gradients become parameter updates. Chapter 04.

    from tinylm.optim import SGD, Adam, AdamW, clip_grad_norm, lr_at

    opt = AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    for it in range(max_iters):
        opt.lr = lr_at(it, config)            # schedule (schedules.py)
        opt.zero_grad()
        logits, loss = model.forward(x, y)
        model.backward()                      # fills every p.grad
        clip_grad_norm(model.parameters(), 1.0)   # clip.py
        opt.step()

Modules: optimizer.py (base class: groups, state dict), sgd.py (SGD, momentum, Nesterov),
adam.py (Adam, AdamW), clip.py (global-norm clipping), schedules.py (constant, warm-up +
cosine, step decay). Each follows torch.optim exactly; tests/test_optim.py proves it.
"""

from tinylm.optim.adam import Adam, AdamW
from tinylm.optim.clip import clip_grad_norm, global_grad_norm
from tinylm.optim.decay import decay_groups
from tinylm.optim.optimizer import Optimizer
from tinylm.optim.schedules import SCHEDULES, constant, lr_at, step_decay, warmup_cosine
from tinylm.optim.sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SCHEDULES", "SGD", "clip_grad_norm", "constant",
           "decay_groups", "global_grad_norm", "lr_at", "step_decay", "warmup_cosine"]
