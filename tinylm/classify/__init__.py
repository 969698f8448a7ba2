"""Text classification (layer 5.5): TF-IDF features + multinomial logistic regression, the
baseline of chapter 09's fine-tuning results, and the metrics every classifier reports.

    result = run_tfidf_baseline("sms-spam", split="balanced", features="word")  # baseline.py
    model = LogisticRegression(n_classes=2, lam=1e-4).fit(X, y)                   # logistic.py
    print(format_metrics(classification_metrics(y_true, y_pred, ("ham", "spam"))))  # metrics.py

L-BFGS (lbfgs.py) fits the model; the features come from tinylm/data/tfidf.py and the
labelled texts and splits from tinylm/data/classification.py.
"""

from tinylm.classify.baseline import FEATURES, SPLITS, run_tfidf_baseline
from tinylm.classify.lbfgs import LbfgsResult, minimize_lbfgs
from tinylm.classify.logistic import (C_GRID, GridPoint, GridSearch, LogisticRegression,
                                      fit_on_grid, lambda_from_c, penalised_loss)
from tinylm.classify.metrics import (accuracy, classification_metrics, confusion_matrix,
                                     format_metrics, precision_recall_f1)

__all__ = [
    "run_tfidf_baseline", "FEATURES", "SPLITS",
    "LogisticRegression", "fit_on_grid", "GridSearch", "GridPoint", "C_GRID", "lambda_from_c",
    "penalised_loss", "minimize_lbfgs", "LbfgsResult",
    "accuracy", "confusion_matrix", "precision_recall_f1", "classification_metrics",
    "format_metrics",
]
