"""`clientele evaluate uplift`: the protocol's JSON, a synthetic experiment whose effect the model finds, errors in
one line, and the Hillstrom benchmark file when it is there."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, real_dataset
from tests.training.test_cli import clientele

MAPPING = """
name: experiment
experiment:
  derive:
    treatment: "arm == 'mail'"
  outcomes: [bought, spend]
  features: [age, region]
"""


@pytest.fixture
def experiment(tmp_path):
    """3,000 customers; the mail works on the young only (+30 points), so ranking by age is the right answer."""
    rng = np.random.default_rng(0)
    n = 3000
    age = rng.integers(18, 80, n)
    mailed = rng.random(n) < 0.5
    p = 0.1 + 0.3 * mailed * (age < 35)
    bought = rng.random(n) < p
    frame = pd.DataFrame({"customer_id": [f"x{i}" for i in range(n)], "arm": np.where(mailed, "mail", "none"),
                          "age": age, "region": rng.choice(["north", "south"], n), "bought": bought.astype(int),
                          "spend": np.where(bought, rng.gamma(2, 20, n), 0.0).round(2)})
    frame.to_csv(tmp_path / "experiment.csv", index=False)
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    (tmp_path / "uplift.yaml").write_text("evaluation:\n  seeds: [0, 1]\n")
    return tmp_path


def test_json_maps_every_model_to_its_metrics(experiment, tmp_path):
    result = clientele("evaluate", "uplift", "--data", experiment / "experiment.csv", "--mapping",
                       experiment / "mapping.yaml", "--config", experiment / "uplift.yaml", "--json",
                       "--plots", tmp_path / "plots")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"clientele", "random", "s_learner", "t_learner", "class_transformation", "_info"}
    assert all(set(report[m]) == {"qini_auc", "uplift@30"} for m in report if m != "_info")
    info = report["_info"]
    assert info["outcome"] == "bought" and info["customers"] == 3000 and info["seeds"] == [0, 1]
    # The effect is strong and simple: the model finds it, the random ordering does not.
    assert report["clientele"]["qini_auc"] > 0.15 > abs(report["random"]["qini_auc"])
    assert report["clientele"]["uplift@30"] > 0.2
    assert (tmp_path / "plots" / "uplift_qini_bought.png").stat().st_size > 0


def test_outcome_option_and_spend(experiment):
    result = clientele("evaluate", "uplift", "--data", experiment / "experiment.csv", "--mapping",
                       experiment / "mapping.yaml", "--config", experiment / "uplift.yaml", "--json",
                       "--outcome", "spend")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["_info"]["outcome"] == "spend" and report["clientele"]["qini_auc"] > 0.1


@pytest.mark.parametrize("args, message", [
    (["--outcome", "visits"], "--outcome: 'visits' is not an outcome of"),
    (["--mapping", "missing.yaml"], "missing.yaml: mapping file does not exist"),
])
def test_mistakes_exit_2_with_one_line(experiment, args, message):
    base = ["evaluate", "uplift", "--data", experiment / "experiment.csv", "--mapping", experiment / "mapping.yaml"]
    if args[0] == "--mapping":
        base = base[:4] + [args[0], experiment / args[1]]
        args = []
    result = clientele(*base, *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_store_without_campaigns_says_so(tmp_path):
    (tmp_path / "transactions.csv").write_text("customer_id,timestamp,amount\nc1,2024-01-01,3\n")
    result = clientele("evaluate", "uplift", "--data", tmp_path)
    assert result.returncode == 2 and "no campaigns table" in result.stderr


def test_hillstrom_with_the_shipped_mapping(tmp_path):
    data = real_dataset("hillstrom_womens.parquet")
    (tmp_path / "uplift.yaml").write_text("evaluation:\n  seeds: [0]\n")
    result = clientele("evaluate", "uplift", "--data", data, "--mapping", ROOT / "configs/datasets/hillstrom.yaml",
                       "--config", tmp_path / "uplift.yaml", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    info = report["_info"]
    assert (info["customers"], info["treated"], info["control"]) == (42693, 21387, 21306)
    assert info["response_treated"] == pytest.approx(0.151, abs=0.001)
    assert report["clientele"]["qini_auc"] > 0.04  # the full five-seed comparison is benchmarks/bench_uplift.py
