"""tinylm.classify: the penalised objective's gradient, L-BFGS, parity of the fitted model with
scikit-learn's LogisticRegression (a test-only oracle), choosing C, saving, the metrics, the
baseline run and its command. Small problems made here; no real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_cli

from tinylm.classify import (LogisticRegression, classification_metrics, confusion_matrix,
                             fit_on_grid, format_metrics, lambda_from_c, minimize_lbfgs,
                             penalised_loss, run_tfidf_baseline)
from tinylm.classify import baseline as baseline_module
from tinylm.data.classification import TextClassificationTask
from tinylm.functional.sparse_linear import csr_from_dense
from tinylm.gradcheck import check_gradients


def _problem(rng, n=90, f=15, k=3, density=0.4):
    """Sparse features with a class signal on feature y_i, and labels y [n] in [0, k)."""
    A = rng.standard_normal((n, f)) * (rng.random((n, f)) < density)
    y = rng.integers(0, k, size=n)
    A[np.arange(n), y] += 1.0
    return A, y


# -- the objective and the optimiser ---------------------------------------------------------
def test_the_penalised_objective_has_the_gradient_it_claims(rng, kernels):
    A, y = _problem(rng, n=12, f=6)
    X = csr_from_dense(A)

    def forward(W, b):
        loss, dW, db = penalised_loss(W, b, X, y, lam=0.3)
        return loss, (dW, db)

    report = check_gradients(forward, lambda g, grads: tuple(g * d for d in grads),
                             {"W": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)},
                             tolerance=1e-7)
    assert report.passed, str(report)


def test_lbfgs_minimises_the_rosenbrock_function():
    def rosenbrock(x):
        f = 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
        g = np.array([-400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]),
                      200 * (x[1] - x[0] ** 2)])
        return f, g

    result = minimize_lbfgs(rosenbrock, np.array([-1.2, 1.0]), max_iter=500, tol=1e-8)
    assert result.converged and result.grad_max <= 1e-8
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-6)
    again = minimize_lbfgs(rosenbrock, np.array([-1.2, 1.0]), max_iter=500, tol=1e-8)
    np.testing.assert_array_equal(result.x, again.x)                  # deterministic
    assert not minimize_lbfgs(rosenbrock, np.array([-1.2, 1.0]), max_iter=3).converged


# -- parity with scikit-learn ----------------------------------------------------------------
@pytest.fixture(scope="module")
def sklearn_linear():
    return pytest.importorskip("sklearn.linear_model")


def _sklearn_fit(sklearn_linear, A, y, C):
    return sklearn_linear.LogisticRegression(C=C, solver="lbfgs", tol=1e-12,
                                             max_iter=10_000).fit(A, y)


def test_multinomial_fit_equals_scikit_learns(rng, sklearn_linear):
    A, y = _problem(rng)
    C = 2.0
    ours = LogisticRegression(3, lambda_from_c(C, len(y)), tol=1e-10).fit(csr_from_dense(A), y)
    theirs = _sklearn_fit(sklearn_linear, A, y, C)
    assert ours.converged
    np.testing.assert_allclose(ours.predict_proba(csr_from_dense(A)), theirs.predict_proba(A),
                               atol=1e-6)
    centred = ours.W - ours.W.mean(axis=1, keepdims=True)          # softmax ignores a shift
    np.testing.assert_allclose(centred, theirs.coef_.T, atol=1e-5)
    # ours is at least as close to the minimum (scikit-learn stops on its ftol)
    X = csr_from_dense(A)
    at_theirs = penalised_loss(theirs.coef_.T.copy(), theirs.intercept_.copy(), X, y, ours.lam)
    assert penalised_loss(ours.W, ours.b, X, y, ours.lam)[0] <= at_theirs[0] + 1e-12


def test_two_classes_match_scikit_learns_binary_model_at_twice_c(rng, sklearn_linear):
    A, y = _problem(rng, k=2)
    C = 0.5
    ours = LogisticRegression(2, lambda_from_c(C, len(y)), tol=1e-10).fit(csr_from_dense(A), y)
    theirs = _sklearn_fit(sklearn_linear, A, y, 2 * C)
    np.testing.assert_allclose(ours.predict_proba(csr_from_dense(A)), theirs.predict_proba(A),
                               atol=1e-6)
    np.testing.assert_allclose(ours.W[:, 1] - ours.W[:, 0], theirs.coef_[0], atol=1e-5)


# -- the model's interface -------------------------------------------------------------------
def test_predictions_and_bad_input(rng):
    A, y = _problem(rng)
    X = csr_from_dense(A)
    model = LogisticRegression(3, 1e-3)
    with pytest.raises(RuntimeError, match="call fit"):
        model.predict(X)
    model.fit(X, y)
    P = model.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), P.argmax(axis=1))
    assert (model.predict(X) == y).mean() > 0.8
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.fit(X, y + 1)
    with pytest.raises(ValueError, match="one per row of X"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match="n_classes=1"):
        LogisticRegression(1)


def test_save_and_load_restore_the_model(rng, tmp_path):
    A, y = _problem(rng)
    X = csr_from_dense(A)
    model = LogisticRegression(3, 1e-3).fit(X, y)
    model.save(tmp_path / "lr", meta={"vectorizer": {"note": "any JSON"}})
    back, meta = LogisticRegression.load(tmp_path / "lr")
    assert meta == {"vectorizer": {"note": "any JSON"}}
    assert (back.lam, back.n_iter, back.converged) == (model.lam, model.n_iter, model.converged)
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))


def test_the_grid_keeps_the_best_validation_accuracy(rng):
    A, y = _problem(rng, n=200)
    X_train, X_val = csr_from_dense(A[:150]), csr_from_dense(A[150:])
    search = fit_on_grid(X_train, y[:150], X_val, y[150:], 3, c_grid=(10.0, 0.001, 1.0))
    assert [p.C for p in search.points] == [0.001, 1.0, 10.0]
    best = max(p.val_accuracy for p in search.points)
    chosen = next(p for p in search.points if p.C == search.C)
    assert chosen.val_accuracy == best and search.model.lam == chosen.lam
    with pytest.raises(ValueError, match="positive"):
        fit_on_grid(X_train, y[:150], X_val, y[150:], 3, c_grid=(0.0,))


# -- metrics ---------------------------------------------------------------------------------
def test_metrics_equal_scikit_learns(rng):
    sk_metrics = pytest.importorskip("sklearn.metrics")
    y_true = rng.integers(0, 3, size=50)
    y_pred = np.where(rng.random(50) < 0.7, y_true, rng.integers(0, 2, size=50))   # no 2s
    y_pred[y_true == 2] = 0                                                          # never 2
    m = classification_metrics(y_true, y_pred, ("a", "b", "c"))
    np.testing.assert_array_equal(m["confusion_matrix"],
                                  sk_metrics.confusion_matrix(y_true, y_pred, labels=[0, 1, 2]))
    p, r, f, s = sk_metrics.precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2],
                                                            zero_division=0)
    for c, name in enumerate("abc"):
        row = m["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (p[c], r[c], f[c], s[c]))
    assert m["macro_f1"] == pytest.approx(f.mean())
    assert m["accuracy"] == pytest.approx(sk_metrics.accuracy_score(y_true, y_pred))
    table = format_metrics(m)
    assert "macro avg" in table and "true \\ pred" in table and table.count("\n") == 10


def test_metrics_refuse_bad_labels():
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"y_pred must hold integer class ids in \[0, 2\)"):
        confusion_matrix([0, 1], [0, 2], 2)


# -- the baseline and its command ------------------------------------------------------------
SPAM_WORDS = ["free", "prize", "win", "cash", "claim", "urgent", "txt"]
HAM_WORDS = ["lunch", "meeting", "home", "tomorrow", "love", "call", "later"]
COMMON = ["the", "you", "now", "ok", "to", "me"]


def _toy_spam(n_ham=80, n_spam=30):
    rng = np.random.default_rng(7)
    texts, labels = [], []
    for label, words, n in ((0, HAM_WORDS, n_ham), (1, SPAM_WORDS, n_spam)):
        for _ in range(n):
            picked = list(rng.choice(words, 3)) + list(rng.choice(COMMON, 3))
            texts.append(" ".join(rng.permutation(picked)))
            labels.append(label)
    return TextClassificationTask("sms-spam", texts, np.array(labels), ("ham", "spam"))


@pytest.fixture
def toy_task(monkeypatch):
    monkeypatch.setattr(baseline_module, "load_task", lambda name: _toy_spam())


@pytest.mark.parametrize("split", ["balanced", "stratified", "cv10"])
def test_the_baseline_separates_an_easy_task(split, toy_task):
    result = run_tfidf_baseline("sms-spam", split=split, features="word", c_grid=(1.0, 10.0))
    assert result["accuracy"] >= 0.9 and result["converged"]
    assert result["label_names"] == ["ham", "spam"] and result["seconds"] > 0
    if split == "balanced":
        assert result["sizes"] == {"train": 42, "val": 6, "test": 12}
        assert result["C"] in (1.0, 10.0) and result["lambda"] == lambda_from_c(result["C"], 42)
    if split == "cv10":
        assert len(result["fold_accuracies"]) == 10 and len(result["C_per_fold"]) == 10
        assert sum(result["sizes"]["test_per_fold"]) == 110
    json.dumps(result)


def test_the_baseline_refuses_unknown_choices(toy_task):
    with pytest.raises(ValueError, match="unknown split 'cv5'"):
        run_tfidf_baseline("sms-spam", split="cv5")
    with pytest.raises(ValueError, match="unknown features 'bpe'"):
        run_tfidf_baseline("sms-spam", features="bpe")


def test_tinylm_baseline_tfidf_prints_a_table_or_json(toy_task, capsys):
    status, out, _ = run_cli(["baseline", "tfidf", "--task", "sms-spam", "--features", "char"],
                             capsys)
    assert status == 0
    assert "split balanced, features char (char_wb 2-5-grams)" in out and "macro avg" in out
    status, out, _ = run_cli(["baseline", "tfidf", "--task", "sms-spam", "--split",
                              "stratified", "--json"], capsys)
    assert status == 0 and json.loads(out)["split"] == "stratified"
    status, _, err = run_cli(["baseline", "tfidf", "--task", "imdb"], capsys)
    assert status == 2 and "invalid choice" in err
