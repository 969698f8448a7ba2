"""L-BFGS: minimise a smooth function from its value and gradient (Nocedal & Wright, ch. 7).

Newton's method steps by d = -H^{-1} g, with H the Hessian. BFGS builds an approximation
of H^{-1} from the steps s_k = x_{k+1} - x_k and the gradient changes y_k = g_{k+1} - g_k
it has seen, each pair adding the curvature it measured (s_k^T y_k > 0 for a convex f).
L-BFGS keeps only the last m pairs and applies the approximation to g without ever forming
a matrix, by the two-loop recursion (q = g, then for k from newest to oldest
alpha_k = rho_k s_k^T q, q -= alpha_k y_k with rho_k = 1 / (y_k^T s_k); r = gamma q with
gamma = s^T y / y^T y of the newest pair; then from oldest to newest
beta = rho_k y_k^T r, r += (alpha_k - beta) s_k; d = -r). Cost per iteration: one
evaluation of f and g plus about 4 m vector operations of the parameters' length.

Step length: backtracking from t = 1 (from t = 1 / ||g|| on the first iteration, which has
no curvature yet) until the Armijo condition f(x + t d) <= f(x) + c1 t g^T d holds, halving
t each time. A pair with s^T y <= 1e-10 y^T y is skipped (it would make the approximation
indefinite), and a direction that is not downhill resets the memory to steepest descent.

Convergence: max_i |g_i| <= tol. A backtracking that finds no decrease (the function has
stopped changing at float64 resolution) ends the run early, reported as not converged.
Everything is deterministic: the same function and start give
the same iterates.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from tinylm.backend import get_array_module
from tinylm.kernels.threads import single_threaded_blas

ARMIJO_C1 = 1e-4
MAX_BACKTRACKS = 40


class LbfgsResult(NamedTuple):
    x: object                 # the last iterate (same shape and array module as x0)
    f: float                  # f(x)
    grad_max: float           # max |g(x)|
    n_iter: int               # iterations (steps taken)
    converged: bool           # grad_max <= tol


def _direction(g, pairs: deque):
    """-H g by the two-loop recursion over ``pairs`` of (s, y, rho), oldest first."""
    xp = get_array_module(g)
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * float(xp.dot(s, q))
        q -= alpha * y
        alphas.append(alpha)
    if pairs:
        s, y, _ = pairs[-1]
        q *= float(xp.dot(s, y)) / float(xp.dot(y, y))
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        q += (alpha - rho * float(xp.dot(y, q))) * s
    return -q


def _backtrack(fun, x, f, g, d, t: float):
    """(t, f_new, g_new) of the first halving of t meeting the Armijo condition, or None."""
    xp = get_array_module(x)
    slope = float(xp.dot(g, d))
    for _ in range(MAX_BACKTRACKS):
        f_new, g_new = fun(x + t * d)
        if f_new <= f + ARMIJO_C1 * t * slope:
            return t, f_new, g_new
        t *= 0.5
    return None


def minimize_lbfgs(fun, x0, max_iter: int = 1000, tol: float = 1e-6,
                   history: int = 10) -> LbfgsResult:
    """Minimise ``fun(x) -> (f: float, g: array like x)`` from x0 (a 1-D float array).

    BLAS runs single-threaded meanwhile: the iteration is a chain of dot products of
    10^4 .. 10^6 numbers, each too short to repay waking a BLAS thread team (on 2 cores
    shared with other work, a 31,000-long fit ran 6x slower with OpenBLAS's two threads)."""
    if max_iter < 1 or tol <= 0 or history < 1:
        raise ValueError(f"minimize_lbfgs: max_iter={max_iter}, tol={tol}, history={history} "
                         "must be >= 1, > 0 and >= 1.")
    with single_threaded_blas():
        return _minimize(fun, x0, max_iter, tol, history)


def _minimize(fun, x0, max_iter: int, tol: float, history: int) -> LbfgsResult:
    xp = get_array_module(x0)
    x = x0.copy()
    f, g = fun(x)
    pairs: deque = deque(maxlen=history)
    for it in range(max_iter):
        grad_max = float(xp.abs(g).max())
        if grad_max <= tol:
            return LbfgsResult(x, f, grad_max, it, True)
        d = _direction(g, pairs)
        if float(xp.dot(g, d)) >= 0:                # not downhill: forget the curvature
            pairs.clear()
            d = -g
        t0 = 1.0 if pairs else 1.0 / max(1.0, float(xp.sqrt(xp.dot(g, g))))
        found = _backtrack(fun, x, f, g, d, t0)
        if found is None:
            return LbfgsResult(x, f, grad_max, it, False)
        t, f, g_new = found
        s, y = t * d, g_new - g
        if float(xp.dot(s, y)) > 1e-10 * float(xp.dot(y, y)):
            pairs.append((s, y, 1.0 / float(xp.dot(y, s))))
        x, g = x + s, g_new
    grad_max = float(xp.abs(g).max())
    return LbfgsResult(x, f, grad_max, max_iter, grad_max <= tol)
