"""Out-of-time churn evaluation of the project's model against its peers, in one run.

Protocol (days): T = the last day in the data minus the horizon; the population is every customer with a purchase
on or before day T; churned = no purchase on days T+1 .. T+horizon; features use purchases on or before day T
only; models are fit on earlier cutoffs whose label windows end by T.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.config import FeatureConfig
from features.exceptions import DataError
from features.labels import data_end
from features.pipeline import LABEL, feature_frame, training_frames
from models.churn.config import ChurnConfig
from models.churn.lightgbm import ChurnModel
from training.churn import clv_frame, fit_churn, fit_clv, training_cutoffs, training_sample
from training.metrics import churn_metrics, decile_table

PROJECT = "clientele"


def evaluation_cutoff(tables: dict[str, pd.DataFrame], horizon_days: int) -> pd.Timestamp:
    """Start of day T+1, where T is the last data day minus the horizon: features see days up to T."""
    last_day = data_end(tables).normalize()
    return last_day - pd.Timedelta(days=horizon_days) + pd.Timedelta(days=1)


@dataclass
class ChurnEvaluation:
    """Scores of every model on the evaluation population, and the metrics."""

    cutoff: pd.Timestamp
    horizon_days: int
    labels: np.ndarray
    scores: dict[str, np.ndarray]
    probabilities: dict[str, np.ndarray | None]
    metrics: dict[str, dict[str, Any]]
    model: ChurnModel
    test_frame: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def evaluate_churn(tables: dict[str, pd.DataFrame], horizon_days: int, config: ChurnConfig | None = None,
                   feature_config: FeatureConfig | None = None) -> ChurnEvaluation:
    """Fit the project's churn model and the peers on earlier cutoffs and score the out-of-time population.

    Peers: recency alone; BG/NBD's P(no purchase in the horizon) (fitted on purchases before T+1, no labels);
    LightGBM on plain RFM features trained on the same cutoffs without calibration.

    Raises
    ------
    DataError
        The data is too short for the horizon, or the evaluation population holds one class only.
    """
    config = config or ChurnConfig()
    feature_config = feature_config or FeatureConfig()
    started = time.perf_counter()
    cutoff = evaluation_cutoff(tables, horizon_days)
    test = feature_frame(tables, cutoff, horizon_days, feature_config, with_label=True)
    labels = test[LABEL].to_numpy(dtype=float)
    if len(np.unique(labels)) < 2:
        raise DataError(f"churn evaluation: every customer in the population at {cutoff.date()} has the same "
                        f"label; choose another horizon")
    cutoffs = training_cutoffs(tables, cutoff, horizon_days, config)
    frames = training_frames(training_sample(tables, len(cutoffs), config), horizon_days, feature_config,
                             cutoffs=cutoffs)
    # The RFM peer boosts beside the project's model (LightGBM lets go of the GIL; each on its own threads, so
    # each is the model it is alone).
    with ThreadPoolExecutor(max_workers=1) as pool:
        peer = pool.submit(ChurnModel(**{**config.model.model_dump(), "calibration": "none"},
                                      features=list(config.rfm_features)).fit, frames)
        fit = fit_churn(tables, cutoff, horizon_days, config, feature_config, frames=frames)
        rfm = peer.result()
    fit_seconds = time.perf_counter() - started

    scores: dict[str, np.ndarray] = {}
    probabilities: dict[str, np.ndarray | None] = {}
    probabilities[PROJECT] = fit.model.predict_proba(test)
    scores[PROJECT] = probabilities[PROJECT]

    scores["recency"] = test["recency_days"].to_numpy(dtype=float)
    probabilities["recency"] = None

    clv = clv_frame(fit_clv(tables, cutoff, config), tables, cutoff, test[C.customer_id], horizon_days, config)
    probabilities["bgnbd"] = clv["p_no_purchase_horizon"].to_numpy(dtype=float)
    scores["bgnbd"] = -clv["expected_purchases_horizon"].to_numpy(dtype=float)

    probabilities["lightgbm_rfm"] = rfm.predict_proba(test)
    scores["lightgbm_rfm"] = probabilities["lightgbm_rfm"]

    metrics = {name: churn_metrics(labels, scores[name], probabilities[name]) for name in scores}
    info = {"cutoff": str(cutoff.date()), "last_feature_day": str((cutoff - pd.Timedelta(days=1)).date()),
            "horizon_days": horizon_days, "customers": int(len(test)), "churn_rate": float(labels.mean()),
            "training_cutoffs": [str(c.date()) for c in cutoffs],
            "calibration_cutoff": str(fit.calibration_cutoff.date()) if fit.calibration_cutoff is not None else None,
            "train_rows": fit.train_rows, "calibration_rows": fit.calibration_rows,
            "seconds": round(time.perf_counter() - started, 1), "fit_seconds": round(fit_seconds, 1)}
    return ChurnEvaluation(cutoff=cutoff, horizon_days=horizon_days, labels=labels, scores=scores,
                           probabilities=probabilities, metrics=metrics, model=fit.model, test_frame=test, info=info)


def evaluation_report(evaluation: ChurnEvaluation) -> dict[str, Any]:
    """The JSON document: model name -> metrics (the project's under ``clientele``), plus ``_info``."""
    report: dict[str, Any] = {name: {k: (round(v, 5) if isinstance(v, float) else v) for k, v in m.items()}
                              for name, m in evaluation.metrics.items()}
    best_peer = max(v["roc_auc"] for k, v in evaluation.metrics.items() if k != PROJECT)
    report["_info"] = {**evaluation.info, "best_peer_roc_auc": round(best_peer, 5),
                       "roc_auc_margin_over_best_peer": round(evaluation.metrics[PROJECT]["roc_auc"] - best_peer, 5),
                       "deciles": decile_table(evaluation.labels, evaluation.scores[PROJECT])}
    return report


def write_plots(evaluation: ChurnEvaluation, out_dir: str | Path, shap_rows: int = 2000) -> list[Path]:
    """ROC, PR, calibration, lift/gain by decile and a SHAP summary, as PNG files a person reads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y = evaluation.labels
    paths = []

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, s in evaluation.scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax1.plot(fpr, tpr, label=f"{name} (AUC {evaluation.metrics[name]['roc_auc']:.3f})")
        prec, rec, _ = precision_recall_curve(y, s)
        ax2.plot(rec, prec, label=f"{name} (AP {evaluation.metrics[name]['pr_auc']:.3f})")
    ax1.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax2.axhline(y.mean(), color="k", ls=":", lw=0.8)
    ax2.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(f"Churn in {evaluation.horizon_days} days after {evaluation.info['last_feature_day']}")
    paths.append(_save(fig, out_dir / "churn_roc_pr.png"))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in evaluation.probabilities.items():
        if p is None:
            continue
        frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, "o-", ms=3, label=f"{name} (Brier {evaluation.metrics[name]['brier']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate", title="Calibration")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "churn_calibration.png"))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, s in evaluation.scores.items():
        table = decile_table(y, s)
        ax1.plot([r["decile"] for r in table], [r["lift"] for r in table], "o-", ms=3, label=name)
        ax2.plot([0] + [r["decile"] * 10 for r in table], [0] + [100 * r["gain"] for r in table], "o-", ms=3,
                 label=name)
    ax1.axhline(1, color="k", ls=":", lw=0.8)
    ax1.set(xlabel="score decile (1 = highest risk)", ylabel="lift", title="Lift by decile")
    ax2.plot([0, 100], [0, 100], "k:", lw=0.8)
    ax2.set(xlabel="% of customers contacted", ylabel="% of churners reached", title="Cumulative gain")
    ax1.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "churn_lift_gain.png"))

    frame = evaluation.test_frame.sample(min(shap_rows, len(evaluation.test_frame)), random_state=0)
    contrib = evaluation.model.contributions(frame)[:, :-1]
    names = evaluation.model.feature_names_
    order = np.argsort(-np.abs(contrib).mean(axis=0))[:15][::-1]
    encoded = evaluation.model.encoder_.transform(frame)
    fig, ax = plt.subplots(figsize=(7, 6))
    for row, j in enumerate(order):
        values = pd.to_numeric(encoded.iloc[:, j], errors="coerce").to_numpy(dtype=float) \
            if names[j] not in evaluation.model.encoder_.categories else np.zeros(len(frame))
        finite = np.isfinite(values)
        colour = np.full(len(values), 0.5)
        if finite.any() and np.nanmax(values) > np.nanmin(values):
            ranks = pd.Series(values).rank(pct=True).to_numpy()
            colour = np.where(finite, ranks, 0.5)
        jitter = np.random.default_rng(j).normal(0, 0.08, len(frame))
        ax.scatter(contrib[:, j], row + jitter, c=colour, cmap="coolwarm", s=4, alpha=0.6)
    ax.set_yticks(range(len(order)), [names[j] for j in order], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="contribution to churn log-odds (red = high feature value)", title="SHAP summary")
    paths.append(_save(fig, out_dir / "churn_shap_summary.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_table(report: dict[str, Any]) -> None:
    """One table: a row per model."""
    from rich.console import Console
    from rich.table import Table

    info = report["_info"]
    table = Table(title=f"churn in {info['horizon_days']} days after {info['last_feature_day']}: "
                        f"{info['customers']:,} customers, {100 * info['churn_rate']:.1f}% churned")
    for col in ("model", "ROC-AUC", "PR-AUC", "Brier", "log-loss", "lift@10%"):
        table.add_column(col, justify="right" if col != "model" else "left")
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    for name, m in report.items():
        if name.startswith("_"):
            continue
        table.add_row(name, fmt(m["roc_auc"]), fmt(m["pr_auc"]), fmt(m["brier"]), fmt(m["log_loss"]),
                      fmt(m["lift@10%"]))
    Console().print(table)
