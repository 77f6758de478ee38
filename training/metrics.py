"""Classification metrics for churn scores (ranking quality, calibration, lift)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def lift_at(labels: np.ndarray, scores: np.ndarray, share: float = 0.1) -> float:
    """Churn rate among the top ``share`` of scores divided by the overall churn rate."""
    labels, scores = np.asarray(labels, float), np.asarray(scores, float)
    k = max(1, int(round(share * len(scores))))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(labels[top].mean() / labels.mean()) if labels.mean() > 0 else float("nan")


def churn_metrics(labels: np.ndarray, scores: np.ndarray, probabilities: np.ndarray | None) -> dict[str, float | None]:
    """ROC-AUC, PR-AUC and top-decile lift of ``scores``; Brier and log-loss of ``probabilities`` (None for a
    ranking-only score)."""
    labels = np.asarray(labels, float)
    out: dict[str, float | None] = {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "lift@10%": lift_at(labels, scores, 0.1),
        "brier": None,
        "log_loss": None,
    }
    if probabilities is not None:
        p = np.clip(np.asarray(probabilities, float), 1e-6, 1 - 1e-6)
        out["brier"] = float(brier_score_loss(labels, p))
        out["log_loss"] = float(log_loss(labels, p, labels=[0, 1]))
    return out


def decile_table(labels: np.ndarray, scores: np.ndarray) -> list[dict[str, float]]:
    """Per score decile (highest first): customers, churn rate, lift and cumulative share of churners (gain)."""
    labels, scores = np.asarray(labels, float), np.asarray(scores, float)
    order = np.argsort(-scores, kind="stable")
    chunks = np.array_split(order, 10)
    total = labels.sum()
    rows, cum = [], 0.0
    for i, idx in enumerate(chunks, 1):
        rate = float(labels[idx].mean()) if len(idx) else float("nan")
        cum += labels[idx].sum()
        rows.append({"decile": i, "customers": int(len(idx)), "churn_rate": rate,
                     "lift": rate / labels.mean() if labels.mean() else float("nan"),
                     "gain": float(cum / total) if total else float("nan")})
    return rows
