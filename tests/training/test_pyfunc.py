"""The registered MLflow models on their own: loaded with plain MLflow outside the checkout, and what they predict."""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from packaging.requirements import Requirement

from tests.training.test_train import write_config
from training.config import TrainConfig
from features.settings import Settings
from training.train import run_training

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("recommender", "churn", "clv")
OURS = {"features", "models", "training"}
# Imported when installed, needed by nobody: scikit-learn's progress callbacks try rich (and rich its renderers).
OPTIONAL = {"rich", "pygments", "markdown-it-py", "mdurl"}

# Runs with `python -I -S`: no PYTHONPATH, no working directory, no .pth files (the editable install of this
# checkout is one), only the plain site-packages given. Everything of ours must come from the model itself.
OUTSIDE = r"""
import json, sys
sys.path.append(sys.argv[1])
args = json.loads(sys.argv[2])
try:
    import features
    before = "importable: " + features.__file__
except ImportError:
    before = "not importable"
import mlflow.pyfunc
import pandas as pd
imported_before = set(sys.modules)
rec = mlflow.pyfunc.load_model(args["models"]["recommender"])
churn = mlflow.pyfunc.load_model(args["models"]["churn"])
clv = mlflow.pyfunc.load_model(args["models"]["clv"])
recs = rec.predict(pd.DataFrame({"customer_id": args["customers"], "n": args["n"]}))
probabilities = churn.predict(pd.read_parquet(args["features"]))["churn_probability"]
values = clv.predict(pd.read_parquet(args["summary"]))
import features, models, training
new = {m.split(".")[0] for m in set(sys.modules) - imported_before}
print(json.dumps({
    "before": before,
    "files": [features.__file__, models.__file__, training.__file__],
    "recommendations": recs.to_dict(orient="list"),
    "churn_probability": probabilities.tolist(),
    "clv": values["clv"].tolist(),
    "imported": sorted(new),
}))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pyfunc")
    settings = Settings(data_dir=folder / "data", mlflow_tracking_uri=f"sqlite:///{folder}/mlflow.db")
    result = run_training(TrainConfig.load(write_config(folder, "base")), settings)
    return folder, settings, result


def champion(settings: Settings, kind: str) -> str:
    return f"models:/{settings.model_name(kind)}@champion"


def requirement_closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require, transitively (normalised names, extras left out)."""
    seen: set[str] = set()
    todo = [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for line in needs:
            req = Requirement(line)
            if req.marker is None or "extra" not in str(req.marker):
                todo.append(canonical(req.name))
    return seen


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_champions_load_outside_the_checkout_from_their_own_code_and_requirements(trained, tmp_path):
    folder, settings, _ = trained
    from features.clv_summary import clv_summary
    from features.io import load_dataset
    from features.pipeline import feature_frame

    required: set[str] = set()
    for kind in KINDS:
        local = Path(mlflow.artifacts.download_artifacts(champion(settings, kind), dst_path=str(tmp_path / kind)))
        requirements = (local / "requirements.txt").read_text().split()
        conda = yaml.safe_load((local / "conda.yaml").read_text())
        pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
        for line in requirements + pip:
            assert "+" not in line, f"{kind}: '{line}' has a local version label no package index serves"
        required |= {Requirement(line).name for line in requirements}
        assert {"torch", "lightgbm", "implicit", "pandas"} <= required
        assert str(ROOT) not in (local / "MLmodel").read_text(), f"{kind}: MLmodel points into the checkout"
        assert (local / "code" / "features" / "pipeline.py").is_file()

    tables = load_dataset(folder / "demo").tables
    cutoff = pd.Timestamp("2025-06-01")
    frame = feature_frame(tables, cutoff).drop(columns=["customer_id"])
    frame.to_parquet(tmp_path / "features.parquet")
    summary = clv_summary(tables["transactions"], cutoff, 7).reset_index(drop=True).head(20)
    summary.to_parquet(tmp_path / "summary.parquet")
    customers = list(tables["customers"]["customer_id"].head(3)) + ["someone-new"]
    args = {"models": {k: champion(settings, k) for k in KINDS}, "customers": customers, "n": [3, 1, 4, 2],
            "features": str(tmp_path / "features.parquet"), "summary": str(tmp_path / "summary.parquet")}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    env["CLIENTELE_DATA_DIR"] = str(settings.data_dir)  # the installation the recommender answers for
    done = subprocess.run([sys.executable, "-I", "-S", "-c", OUTSIDE, site.getsitepackages()[0], json.dumps(args)],
                          cwd=outside, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])

    assert got["before"] == "not importable"  # the checkout is not on the path of the subprocess...
    for file in got["files"]:  # ...so our packages came out of the downloaded model
        assert not Path(file).resolve().is_relative_to(ROOT), file
        assert f"{os.sep}code{os.sep}" in file, file
    counts = pd.Series(got["recommendations"]["customer_id"]).value_counts()
    assert counts.to_dict() == dict(zip(customers, [3, 1, 4, 2]))
    here = mlflow.pyfunc.load_model(champion(settings, "churn")).predict(frame)["churn_probability"]
    assert got["churn_probability"] == pytest.approx(here.tolist())
    assert len(got["clv"]) == len(summary)
    # Every distribution the models imported is one their requirements name (or MLflow brings).
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    used = {canonical(d) for m in set(got["imported"]) - OURS for d in owners.get(m, [])}
    missing = used - requirement_closure(required | {"mlflow"}) - OPTIONAL
    assert not missing, f"imported by the models but not in their requirements: {sorted(missing)}"


def test_recommender_predict_honours_each_rows_n_in_input_order(trained, monkeypatch):
    folder, settings, _ = trained
    from features.io import load_dataset
    from features.privacy import pseudonymise

    monkeypatch.setenv("CLIENTELE_DATA_DIR", str(settings.data_dir))  # the installation it answers for
    buyers = load_dataset(folder / "demo").tables["transactions"]["customer_id"]
    customers = list(pd.unique(buyers))[:2]
    loaded = mlflow.pyfunc.load_model(champion(settings, "recommender"))
    model = loaded.unwrap_python_model().model

    def answers(customer: str, n: int) -> pd.DataFrame:
        """The model's own answer (it knows the customer by pseudonym), named by the customer's own id."""
        out = model.recommend([pseudonymise(customer, settings.pseudonym_key)], n=n)
        return out.assign(customer_id=pd.Series([customer] * len(out), dtype=out["customer_id"].dtype))

    rows = pd.DataFrame({"customer_id": [customers[0], customers[1], "someone-new", customers[0]],
                         "n": [2, 5, 3, 1]})
    got = loaded.predict(rows)
    expected = pd.concat([answers(c, n) for c, n in zip(rows["customer_id"], rows["n"])], ignore_index=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
    assert (got["strategy"].iloc[:7] == "personal").all()
    assert got["customer_id"].tolist() == [customers[0]] * 2 + [customers[1]] * 5 + ["someone-new"] * 3 \
        + [customers[0]]

    # One n for every row (the usual batch) is one call, in the input's order.
    same = loaded.predict(pd.DataFrame({"customer_id": [customers[1], customers[0]], "n": [4, 4]}))
    pd.testing.assert_frame_equal(same, pd.concat([answers(customers[1], 4), answers(customers[0], 4)],
                                                  ignore_index=True), check_dtype=False)


def test_the_recommender_refuses_an_installation_with_another_key(trained, monkeypatch, tmp_path):
    """Loaded where the pseudonym key differs (another data folder), the model would know nobody: it says so."""
    from features.exceptions import ConfigError

    _, settings, _ = trained
    monkeypatch.setenv("CLIENTELE_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigError, match="does not exist"):
        mlflow.pyfunc.load_model(champion(settings, "recommender"))
    monkeypatch.setenv("CLIENTELE_PSEUDONYM_KEY", "another-installations-key")
    with pytest.raises(ConfigError, match="another pseudonym key"):
        mlflow.pyfunc.load_model(champion(settings, "recommender"))
