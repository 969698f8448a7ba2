"""Multinomial logistic regression on sparse features, with an L2 penalty (chapter 09).

The model: K classes, features x_i [F] (a TF-IDF row), weights W [F, K], bias b [K],

    z_i = x_i W + b                     [K] logits (tinylm/functional/sparse_linear.py)
    p_i = softmax(z_i)                  [K] class probabilities

and the loss, the mean cross-entropy plus the penalty on the weights (not on the bias):

    L(W, b) = (1/N) sum_i -log p_{i, y_i} + (lambda / 2) ||W||_F^2

With Y the one-hot targets [N, K] and P the probabilities, dL/dZ = (P - Y) / N (the pair of
tinylm/functional/cross_entropy.py), which the linear layer's backward turns into

    dL/dW = X^T (P - Y) / N + lambda W          [F, K]
    dL/db = (1/N) sum_i (p_i - y_i)             [K]

scikit-learn's ``LogisticRegression(C=...)`` minimises C sum_i CE_i + ||W||^2 / 2, which is
N C times L with lambda = 1 / (C N): the same minimiser. (Its lbfgs solver in fact works on
L itself and stops at max |gradient| <= tol = 1e-4 by default; ours stops at 1e-6.) For two
classes scikit-learn fits one weight vector w = w_1 - w_0 instead of W's two columns; the
penalty then sees ||w||^2 where ours sees ||w_0||^2 + ||w_1||^2 = ||w||^2 / 2 at the
optimum, so our C equals its 2C.

Why L-BFGS (tinylm/classify/lbfgs.py) and not Adam for a fixed number of epochs: L is
smooth and convex, and with lambda > 0 strongly convex in W, so W has one optimal value
(b is optimal up to one constant added to every class, which changes no probability; as
dL/db sums to 0 over the classes, a fit from b = 0 keeps sum_k b_k = 0). A quasi-Newton
method reaches the minimum to a gradient tolerance of 1e-6 in tens to hundreds of full-batch
iterations, with no learning rate or epoch count to tune and deterministic iterates. A
result then depends on (features, lambda) alone, not on the optimiser's settings, which is
what a baseline must do, and it can be checked against scikit-learn's lbfgs to many digits.

lambda is chosen on the validation split: ``fit_on_grid`` fits each C of a small grid
(strongest penalty first, each fit starting from the previous solution) and keeps the one of
highest validation accuracy, ties going to the lower validation loss.

A fitted model saves as a tinylm checkpoint (JSON metadata + .npz arrays, no pickle).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy

from tinylm.backend import get_array_module
from tinylm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinylm.classify.lbfgs import minimize_lbfgs
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.softmax import softmax_forward
from tinylm.functional.sparse_linear import (CSRMatrix, check_csr, sparse_linear_backward,
                                             sparse_linear_forward)

C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
MODEL_KIND = "logistic_regression"


def penalised_loss(W, b, X: CSRMatrix, y, lam: float) -> tuple:
    """L(W, b) of the module docstring and its gradient -> (loss: float, dW [F, K], db [K])."""
    xp = get_array_module(W)
    logits, linear_cache = sparse_linear_forward(X, W, b)                 # [N, K]
    ce, ce_cache = cross_entropy_forward(logits, y)                       # mean -log p_{i, y_i}
    dlogits = cross_entropy_backward(1.0, ce_cache)                       # (P - Y) / N
    dW, db = sparse_linear_backward(dlogits, linear_cache)                # X^T dZ, sum_i dZ_i
    dW += lam * W
    return float(ce) + 0.5 * lam * float(xp.sum(W * W)), dW, db


def lambda_from_c(C: float, n_examples: int) -> float:
    """scikit-learn's C -> our lambda = 1 / (C N)."""
    return 1.0 / (C * n_examples)


class LogisticRegression:
    """LogisticRegression(n_classes, lam=1e-4, max_iter=1000, tol=1e-6): softmax regression
    fitted by L-BFGS to max |gradient| <= tol. After ``fit``: ``W`` [F, K], ``b`` [K],
    ``n_iter``, ``converged``."""

    def __init__(self, n_classes: int, lam: float = 1e-4, max_iter: int = 1000,
                 tol: float = 1e-6):
        if n_classes < 2 or lam < 0:
            raise ValueError(f"LogisticRegression: n_classes={n_classes} must be >= 2 and "
                             f"lam={lam} >= 0.")
        self.n_classes, self.lam, self.max_iter, self.tol = n_classes, float(lam), max_iter, tol
        self.W = self.b = None
        self.n_iter, self.converged = 0, False

    def _check_targets(self, X: CSRMatrix, y) -> None:
        check_csr(X, "LogisticRegression.fit")
        if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
            raise ValueError(f"LogisticRegression.fit: y must be {X.shape[0]} integer labels "
                             f"(one per row of X), got shape {y.shape}, dtype {y.dtype}.")
        if y.size and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"LogisticRegression.fit: labels must lie in [0, {self.n_classes})"
                             f", got {int(y.min())} .. {int(y.max())}.")

    def fit(self, X: CSRMatrix, y, init: "LogisticRegression | None" = None):
        """Minimise L on (X [N, F], y [N]), from zeros or from ``init``'s weights."""
        self._check_targets(X, y)
        xp = get_array_module(X.data)
        F, K = X.shape[1], self.n_classes
        if init is not None and init.W.shape != (F, K):
            raise ValueError(f"LogisticRegression.fit: init has weights {init.W.shape}, the "
                             f"data needs ({F}, {K}); start from a model of the same features.")
        theta = (xp.zeros(F * K + K) if init is None
                 else xp.concatenate([init.W.ravel(), init.b]).astype(xp.float64))

        def objective(t):
            loss, dW, db = penalised_loss(t[:F * K].reshape(F, K), t[F * K:], X, y, self.lam)
            return loss, xp.concatenate([dW.ravel(), db])

        result = minimize_lbfgs(objective, theta, self.max_iter, self.tol)
        self.W, self.b = result.x[:F * K].reshape(F, K), result.x[F * K:]
        self.n_iter, self.converged = result.n_iter, result.converged
        return self

    def _check_fitted(self) -> None:
        if self.W is None:
            raise RuntimeError("LogisticRegression: call fit(X, y) (or load) first.")

    def decision_function(self, X: CSRMatrix):
        """Logits Z = X W + b [N, K]."""
        self._check_fitted()
        return sparse_linear_forward(X, self.W, self.b)[0]

    def predict_proba(self, X: CSRMatrix):
        """Class probabilities softmax(X W + b) [N, K]."""
        return softmax_forward(self.decision_function(X))[0]

    def predict(self, X: CSRMatrix):
        """The most probable class of each row [N] int64."""
        return self.decision_function(X).argmax(axis=1)

    def log_loss(self, X: CSRMatrix, y) -> float:
        """Mean cross-entropy of (X, y), without the penalty."""
        return float(cross_entropy_forward(self.decision_function(X), y)[0])

    def save(self, path, meta: dict | None = None):
        """Write checkpoint ``path`` (path.json + arrays .npz); ``meta`` (JSON-able, e.g. the
        vectorizer's ``to_dict()``) is stored with it. Returns the JSON file's path."""
        self._check_fitted()
        settings = {"kind": MODEL_KIND, "n_classes": self.n_classes, "lam": self.lam,
                    "max_iter": self.max_iter, "tol": self.tol, "n_iter": self.n_iter,
                    "converged": self.converged}
        return save_checkpoint(path, {"W": numpy.asarray(self.W), "b": numpy.asarray(self.b)},
                               {"model": settings, "meta": meta or {}})

    @classmethod
    def load(cls, path) -> tuple:
        """The checkpoint ``save`` wrote -> (model, meta)."""
        arrays, saved = load_checkpoint(path)
        settings = saved.get("model", {})
        if settings.get("kind") != MODEL_KIND or set(arrays) != {"W", "b"}:
            raise CheckpointError(f"{path} is not a saved LogisticRegression.")
        model = cls(settings["n_classes"], settings["lam"], settings["max_iter"],
                    settings["tol"])
        model.W, model.b = arrays["W"], arrays["b"]
        model.n_iter, model.converged = settings["n_iter"], settings["converged"]
        return model, saved["meta"]


class GridPoint(NamedTuple):
    C: float
    lam: float
    val_accuracy: float
    val_loss: float
    n_iter: int
    converged: bool


class GridSearch(NamedTuple):
    model: LogisticRegression     # fitted with the chosen C, on the training part
    C: float                      # the chosen C (lambda = model.lam = 1 / (C N_train))
    points: list                  # [GridPoint], in increasing C


def fit_on_grid(X_train: CSRMatrix, y_train, X_val: CSRMatrix, y_val, n_classes: int,
                c_grid=C_GRID, **fit_options) -> GridSearch:
    """Fit every C of ``c_grid`` on the training part and keep the best on the validation
    part (module docstring). ``fit_options`` go to LogisticRegression."""
    if not c_grid or min(c_grid) <= 0:
        raise ValueError(f"fit_on_grid: c_grid={tuple(c_grid)} must hold positive values.")
    models, points, previous = [], [], None
    for C in sorted(c_grid):                             # strongest penalty first: warm starts
        model = LogisticRegression(n_classes, lambda_from_c(C, X_train.shape[0]),
                                   **fit_options).fit(X_train, y_train, init=previous)
        accuracy = float((model.predict(X_val) == y_val).mean())
        points.append(GridPoint(C, model.lam, accuracy, model.log_loss(X_val, y_val),
                                model.n_iter, model.converged))
        models.append(model)
        previous = model
    best = max(range(len(points)), key=lambda i: (points[i].val_accuracy, -points[i].val_loss))
    return GridSearch(models[best], points[best].C, points)
