"""Uplift evaluation of the project's model against its peers, in one run.

Protocol: for each seed (0-4 by default) the customers are split 70/30, stratified on treatment x outcome; every
model is fitted on the 70% and ranks the 30%; the normalised Qini AUC (scikit-uplift's definition) and uplift@30%
(treated minus control mean outcome among the top 30%) are averaged over the seeds. Peers, all on the same LightGBM
settings: ``random`` (a random ordering), ``s_learner``, ``t_learner`` and ``class_transformation``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from features.exceptions import DataError
from models.uplift.config import UpliftConfig
from models.uplift.learners import ClassTransformation, SLearner, TLearner
from models.uplift.metrics import qini_auc, qini_curve, uplift_at_k
from models.uplift.model import UpliftModel, strata

PROJECT = "clientele"
PEERS = ("random", "s_learner", "t_learner", "class_transformation")
TOP_KEY = "uplift@30"


@dataclass
class UpliftEvaluation:
    """Metrics per model (mean over seeds, and per seed), the Qini curves of the first seed, and run facts."""

    outcome: str
    metrics: dict[str, dict[str, Any]]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    info: dict[str, Any] = field(default_factory=dict)


def _models(config: UpliftConfig, seed: int, peers: bool) -> dict[str, Any]:
    models: dict[str, Any] = {PROJECT: UpliftModel(config.model, random_state=seed)}
    if peers:
        models.update({"s_learner": SLearner(config.peers, random_state=seed),
                       "t_learner": TLearner(config.peers, random_state=seed),
                       "class_transformation": ClassTransformation(config.peers, random_state=seed)})
    return models


def evaluate_uplift(X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray, config: UpliftConfig | None = None,
                    outcome_name: str = "outcome", peers: bool = True) -> UpliftEvaluation:
    """Fit and score every model on each seed's split and average the metrics (see the module docstring);
    ``peers=False`` measures the project's model alone (training's holdout, where only its figure decides).

    Raises
    ------
    DataError
        Too few rows, a group is empty, or the outcome never happens in one of the groups.
    """
    config = config or UpliftConfig()
    protocol = config.evaluation
    started = time.perf_counter()
    t = np.asarray(treatment, dtype=float)
    y = np.asarray(outcome, dtype=float)
    groups = strata(t, y)
    counts = np.bincount(groups, minlength=4)
    if (counts[[2, 3]].sum() == 0) or (counts[[0, 1]].sum() == 0):
        raise DataError(f"uplift evaluation: '{outcome_name}' needs treated and control customers")
    if counts[1] == 0 or counts[3] == 0:
        raise DataError(f"uplift evaluation: '{outcome_name}' never happens in the "
                        f"{'control' if counts[1] == 0 else 'treated'} group; nothing to learn an effect from")
    if counts.min() < 2:
        groups = t.astype(int)  # a stratum of one row cannot be split; treatment alone still can
    per_seed: dict[str, dict[str, list[float]]] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for i, seed in enumerate(protocol.seeds):
        train, test = train_test_split(np.arange(len(y)), test_size=protocol.test_share, random_state=seed,
                                       stratify=groups)
        predictions = {"random": np.random.default_rng(seed).random(len(test))} if peers else {}
        for name, model in _models(config, seed, peers).items():
            model.fit(X.iloc[train], t[train], y[train])
            predictions[name] = model.predict(X.iloc[test])
        for name, uplift in predictions.items():
            scores = per_seed.setdefault(name, {"qini_auc": [], TOP_KEY: []})
            scores["qini_auc"].append(qini_auc(y[test], uplift, t[test]))
            scores[TOP_KEY].append(uplift_at_k(y[test], uplift, t[test], protocol.top_share))
            if i == 0:
                curves[name] = qini_curve(y[test], uplift, t[test])
    metrics = {name: {"qini_auc": float(np.mean(s["qini_auc"])), TOP_KEY: float(np.nanmean(s[TOP_KEY])),
                      "qini_auc_by_seed": [round(v, 5) for v in s["qini_auc"]]}
               for name, s in per_seed.items()}
    order = [PROJECT, *PEERS] if peers else [PROJECT]
    info = {"outcome": outcome_name, "customers": int(len(y)), "treated": int(t.sum()),
            "control": int(len(t) - t.sum()), "response_treated": float(y[t == 1].mean()),
            "response_control": float(y[t == 0].mean()), "seeds": list(protocol.seeds),
            "test_share": protocol.test_share, "features": list(map(str, X.columns)),
            "seconds": round(time.perf_counter() - started, 1)}
    return UpliftEvaluation(outcome=outcome_name, metrics={n: metrics[n] for n in order}, curves=curves, info=info)


def evaluation_report(evaluation: UpliftEvaluation) -> dict[str, Any]:
    """The JSON document: model name -> ``qini_auc`` and ``uplift@30`` (the project's under ``clientele``), plus
    ``_info`` with the per-seed figures and the ratio to the best peer."""
    report: dict[str, Any] = {name: {"qini_auc": round(m["qini_auc"], 5), TOP_KEY: round(m[TOP_KEY], 5)}
                              for name, m in evaluation.metrics.items()}
    report["_info"] = {**evaluation.info,
                       "qini_auc_by_seed": {n: m["qini_auc_by_seed"] for n, m in evaluation.metrics.items()}}
    peers = [n for n in evaluation.metrics if n != PROJECT]
    if peers:
        best_name = max(peers, key=lambda n: evaluation.metrics[n]["qini_auc"])
        best = evaluation.metrics[best_name]["qini_auc"]
        ours = evaluation.metrics[PROJECT]["qini_auc"]
        report["_info"].update(best_peer=best_name, best_peer_qini_auc=round(best, 5),
                               qini_auc_ratio_to_best_peer=round(ours / best, 3) if best > 0 else None)
    return report


def write_plots(evaluation: UpliftEvaluation, out_dir: str | Path) -> list[Path]:
    """Qini curves of every model on the first seed's test split, with the random line, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    end = None
    for name, (x, q) in evaluation.curves.items():
        share = 100 * x / x[-1]
        ax.plot(share, q, lw=2 if name == PROJECT else 1,
                label=f"{name} (Qini {evaluation.metrics[name]['qini_auc']:.3f})")
        end = (share[-1], q[-1])
    if end is not None:
        ax.plot([0, end[0]], [0, end[1]], "k:", lw=0.8)
    ax.set(xlabel="% of customers targeted (highest predicted uplift first)",
           ylabel=f"incremental {evaluation.outcome}", title=f"Qini curves: {evaluation.outcome}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / f"uplift_qini_{evaluation.outcome}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def print_table(report: dict[str, Any]) -> None:
    """One table: a row per model."""
    from rich.console import Console
    from rich.table import Table

    info = report["_info"]
    table = Table(title=f"uplift on '{info['outcome']}': {info['customers']:,} customers ({info['treated']:,} "
                        f"treated), {len(info['seeds'])} seeds, test share {info['test_share']}")
    for col in ("model", "Qini AUC", "uplift@30%"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for name, m in report.items():
        if not name.startswith("_"):
            table.add_row(name, f"{m['qini_auc']:.4f}", f"{m[TOP_KEY]:.4f}")
    Console().print(table)
    ratio = info.get("qini_auc_ratio_to_best_peer")
    if ratio is not None:
        Console().print(f"clientele / best peer ({info['best_peer']}): {ratio:.2f}x")
