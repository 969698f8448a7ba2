"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.

Exactly the rule of ``torch.optim.SGD`` (chapter 04, "Momentum"). With gradient g_t of the
minibatch loss at step t, learning rate eta, momentum mu, dampening tau and decay lambda:

    d_t = g_t + lambda * theta_{t-1}                   (L2 penalty folded into the gradient)
    b_1 = d_1,   b_t = mu * b_{t-1} + (1 - tau) * d_t   (momentum buffer; no dampening at t=1)
    s_t = d_t + mu * b_t    if nesterov,  else  b_t      (the step direction)
    theta_t = theta_{t-1} - eta * s_t

With mu = 0 this is plain SGD: theta -= eta * (g + lambda * theta).

Two equivalences worth knowing (derived in chapter 04):

* Heavy ball. The textbook v_t = mu v_{t-1} + eta g_t, theta_t = theta_{t-1} - v_t is this
  rule with v_t = eta b_t, as long as eta is constant. When a schedule changes eta, PyTorch's
  form applies the new eta to the whole buffer at once.
* Nesterov. The textbook rule evaluates the gradient at the look-ahead point,
  v_t = mu v_{t-1} - eta grad f(theta_{t-1} + mu v_{t-1}), theta_t = theta_{t-1} + v_t.
  Storing phi = theta + mu v instead of theta turns it into
  b_t = mu b_{t-1} + grad f(phi_{t-1}),  phi_t = phi_{t-1} - eta (grad f(phi_{t-1}) + mu b_t),
  which is the nesterov branch above: one gradient per step, at the stored point.
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.optim.optimizer import Optimizer, _check_nonnegative, check_same_shape


class SGD(Optimizer):
    """SGD(params, lr, momentum=0, nesterov=False, weight_decay=0, dampening=0)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, dampening: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=bool(nesterov),
                                      weight_decay=weight_decay, dampening=dampening))

    def _check_hyperparameters(self, group: dict) -> None:
        super()._check_hyperparameters(group)
        _check_nonnegative("SGD", "momentum", group["momentum"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0 "
                             f"(got momentum={group['momentum']}, "
                             f"dampening={group['dampening']}).")

    def _state_names(self, group: dict) -> tuple:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _update(self, p, state: dict, group: dict, t: int) -> None:
        xp = get_array_module(p.data)
        lr, mu, tau, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        d = p.grad
        if wd != 0:
            d = d + wd * p.data                           # d_t = g_t + lambda theta
        if mu != 0:
            b = state["momentum_buffer"]
            check_same_shape("SGD", p.data, grad=p.grad, momentum_buffer=b)  # b[...] = d broadcasts
            if t == 1:
                b[...] = d                                # b_1 = d_1
            else:
                b *= mu                                   # b_t = mu b_{t-1} + (1 - tau) d_t
                b += d if tau == 0 else (1 - tau) * d
            d = d + mu * b if group["nesterov"] else b    # s_t
        step = self._scratch(p)
        xp.multiply(d, lr, out=step)                      # theta -= eta s_t
        p.data -= step
