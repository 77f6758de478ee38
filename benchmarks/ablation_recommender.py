"""Which generator and feature group adds what: the two-stage recommender refitted without each, same split.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ablation_recommender.py [--data PATH] [--mapping YAML|none]
        [--test-days 30] [--variant NAME=JSON ...]

Each variant is the ``clientele`` section of configs/recommender.yaml with changes: ``{"drop": [generators],
"set": {parameter: value}}`` (a mapping value is merged into the section's). Without ``--variant`` the default
ladder runs: the model without the TIFU-KNN generators and the rhythm features, with each, with both (the
default), and the default without each of the other generators. Every variant is fitted on the data before the
test window and scored on it exactly as ``clientele evaluate recommender`` scores the model (one process, one
split); the table prints NDCG@10, Recall@20, their "new" and "repeat" halves and the fit seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from features.config import FeatureConfig  # noqa: E402
from features.io import load_dataset  # noqa: E402
from models.recommenders.config import load_config  # noqa: E402
from training.evaluate_recommender import OWN, evaluate_recommenders  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "online_retail.parquet"
DEFAULT_MAPPING = ROOT / "configs" / "datasets" / "online_retail.yaml"
TIFU = ["tifu", "tifu_neighbours"]
COLUMNS = ("ndcg@10", "recall@20", "ndcg@10_new", "recall@20_new", "ndcg@10_repeat", "recall@20_repeat",
           "fit_seconds")


def default_variants(generators: list[str]) -> dict[str, dict[str, Any]]:
    """The ladder: without TIFU-KNN and rhythm, with each, with both; then the default without each generator."""
    no_rhythm = {"features": {"rhythm": False}}
    ladder = {
        "without TIFU-KNN generators and rhythm features": {"drop": TIFU, "set": no_rhythm},
        "+ TIFU-KNN generators": {"set": no_rhythm},
        "+ rhythm features": {"drop": TIFU},
        "+ both (default)": {},
    }
    for name in generators:
        if name not in TIFU:
            ladder[f"default - {name}"] = {"drop": [name]}
    return ladder


def variant_config(config: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The configuration with one variant's changes to its ``clientele`` section."""
    config = copy.deepcopy(config)
    section = config[OWN]
    for name in change.get("drop", []):
        section["generators"].pop(name)
    for key, value in (change.get("set") or {}).items():
        section[key] = {**(section.get(key) or {}), **value} if isinstance(value, dict) else value
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mapping", type=Path, default=DEFAULT_MAPPING)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON")
    args = parser.parse_args(argv)

    config = load_config()
    if args.variant:
        variants = {}
        for text in args.variant:
            name, _, change = text.partition("=")
            variants[name] = json.loads(change or "{}")
    else:
        variants = default_variants(list(config[OWN]["generators"]))
    features = FeatureConfig.load()
    mapping = None if str(args.mapping).lower() == "none" else args.mapping
    tables = load_dataset(args.data, mapping).tables
    print("| variant | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, change in variants.items():
        result = evaluate_recommenders(tables, args.test_days, config=variant_config(config, change),
                                       models=[OWN], features=features)[OWN]
        cells = [f"{result[c]:.1f}" if c == "fit_seconds" else f"{result[c]:.4f}" for c in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
