"""Uplift benchmark on the Hillstrom e-mail experiment: the project's model and its peers side by side in one run.

    .venv/bin/python benchmarks/bench_uplift.py [--data ../shared/datasets/hillstrom_womens.parquet]
        [--outcomes visit conversion spend] [--plots benchmarks/results/uplift_plots]

Same protocol as `clientele evaluate uplift` (70/30 splits stratified on treatment x outcome, seeds 0-4, mean
normalised Qini AUC and uplift@30%), once per outcome. Ablation rows (``stumps:<learner>``) run the project's
model with another meta-learner on the same boosted stumps, to show what the learner and the smoothing each
bring. Prints a Markdown table and writes benchmarks/results/uplift.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "datasets" / "hillstrom_womens.parquet"
ABLATIONS = ("class_transformation", "t_learner", "dr_learner")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--mapping", type=Path, default=ROOT / "configs" / "datasets" / "hillstrom.yaml")
    parser.add_argument("--outcomes", nargs="+", default=["visit", "conversion", "spend"])
    parser.add_argument("--plots", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (the real datasets live in ../shared/datasets)")

    import numpy as np

    from models.uplift.config import UpliftConfig
    from models.uplift.model import UpliftModel
    from training.evaluate_uplift import PROJECT, TOP_KEY, evaluate_uplift, evaluation_report, write_plots
    from training.uplift_data import uplift_table

    config = UpliftConfig()
    table = uplift_table(args.data, args.mapping, None, config)
    results = {}
    for outcome in args.outcomes:
        y = table.outcomes[table.outcome(outcome)].to_numpy()
        started = time.perf_counter()
        evaluation = evaluate_uplift(table.features, table.treatment, y, config, outcome)
        report = evaluation_report(evaluation)
        report["_info"]["seconds"] = round(time.perf_counter() - started, 1)
        if args.plots:
            write_plots(evaluation, args.plots)
        report["_ablations"] = _ablations(table, y, config, UpliftModel, np)
        results[outcome] = report

    print(f"| outcome | {PROJECT} | random | S-learner | T-learner | class transformation | "
          f"{PROJECT} / best peer | " + " | ".join(f"stumps: {a}" for a in ABLATIONS) + " |")
    print("|---" * (7 + len(ABLATIONS)) + "|")
    for outcome, r in results.items():
        cells = [f"{r[m]['qini_auc']:.4f}" for m in (PROJECT, "random", "s_learner", "t_learner",
                                                     "class_transformation")]
        ratio = r["_info"]["qini_auc_ratio_to_best_peer"]
        ablation = [f"{r['_ablations'][a]:.4f}" for a in ABLATIONS]
        print(f"| {outcome} | " + " | ".join(cells) + f" | {ratio:.2f}x | " + " | ".join(ablation) + " |")
    print()
    print("| outcome | " + " | ".join(f"{m} uplift@30%" for m in (PROJECT, "s_learner", "t_learner",
                                                                    "class_transformation")) + " | seconds |")
    print("|---" * 6 + "|")
    for outcome, r in results.items():
        print(f"| {outcome} | " + " | ".join(f"{r[m][TOP_KEY]:.4f}" for m in (PROJECT, "s_learner", "t_learner",
                                                                           "class_transformation"))
              + f" | {r['_info']['seconds']} |")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "uplift.json").write_text(json.dumps(results, indent=1, default=str))


def _ablations(table, y, config, model_class, np) -> dict[str, float]:
    """Mean Qini AUC of the project's model with each other learner on the same stumps, same splits."""
    from sklearn.model_selection import train_test_split

    from models.uplift.metrics import qini_auc
    from models.uplift.model import strata

    out = {}
    for learner in ABLATIONS:
        model_config = config.model.model_copy(update={"learner": learner})
        scores = []
        for seed in config.evaluation.seeds:
            train, test = train_test_split(np.arange(len(y)), test_size=config.evaluation.test_share,
                                           random_state=seed, stratify=strata(table.treatment, y))
            model = model_class(model_config, random_state=seed).fit(table.features.iloc[train],
                                                                     table.treatment[train], y[train])
            scores.append(qini_auc(y[test], model.predict(table.features.iloc[test]), table.treatment[test]))
        out[learner] = float(np.mean(scores))
    return out


if __name__ == "__main__":
    main()
