"""Churn model: calibration, reason codes, persistence, and an evaluation that never sees past T."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from features.pipeline import training_frames
from features.synthetic import generate
from features.i18n import code_of, render
from models.churn.calibration import Calibrator
from models.churn.config import ChurnConfig
from models.churn.lightgbm import ChurnModel, customer_scores_frame
from models.churn.reasons import family_of, reason_text
from training.evaluate_churn import evaluate_churn, evaluation_cutoff

HORIZON = 90


@pytest.fixture(scope="module")
def tables():
    return generate("beauty", customers=2500, seed=11)


@pytest.fixture(scope="module")
def frames(tables):
    cutoffs = [pd.Timestamp("2024-09-01") + pd.Timedelta(days=30 * k) for k in range(6)]
    return training_frames(tables, HORIZON, cutoffs=cutoffs)


def split(frames):
    cutoffs = sorted(frames["cutoff"].unique())
    return (frames[frames["cutoff"].isin(cutoffs[:4])], frames[frames["cutoff"] == cutoffs[4]],
            frames[frames["cutoff"] == cutoffs[5]])


OVERFIT = dict(n_estimators=150, learning_rate=0.3, num_leaves=63, min_child_samples=2, subsample=1.0,
               colsample_bytree=1.0, reg_lambda=0.0)


@pytest.fixture(scope="module")
def overfit(frames):
    """An overconfident booster (deep trees, no regularisation), fitted once, with its calibrated twin."""
    train, calibration, test = split(frames)
    raw = ChurnModel(**OVERFIT, calibration="none").fit(train)
    calibrated = ChurnModel(**OVERFIT, calibration="temperature").fit(train, calibration)
    return raw, calibrated, calibration, test


@pytest.mark.parametrize("method", ["temperature", "isotonic", "sigmoid"])
def test_calibration_lowers_brier_of_an_overconfident_model(overfit, method):
    raw, _, calibration, test = overfit
    y = test["churned"].to_numpy()
    calibrator = Calibrator(method).fit(raw.raw_score(calibration), calibration["churned"].to_numpy())
    before = brier_score_loss(y, raw.predict_proba(test))
    after = brier_score_loss(y, calibrator.transform(raw.raw_score(test)))
    assert after < before - 0.005, (before, after)


def test_the_model_applies_its_calibration(overfit):
    raw, calibrated, _, test = overfit
    # Same seed and data: the same booster, so only the calibration differs.
    np.testing.assert_allclose(calibrated.raw_score(test), raw.raw_score(test))
    y = test["churned"].to_numpy()
    assert calibrated.calibrator_.fitted_method_ == "temperature" and calibrated.calibrator_.a_ < 1
    assert brier_score_loss(y, calibrated.predict_proba(test)) < brier_score_loss(y, raw.predict_proba(test))


def test_temperature_keeps_the_ranking_and_isotonic_is_monotone():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-scores / 3))).astype(float)
    temp = Calibrator("temperature").fit(scores, labels)
    assert 0.2 < temp.a_ < 0.5 and temp.b_ == 0.0  # the true scale is 1/3
    grid = np.linspace(-10, 10, 201)
    assert np.all(np.diff(temp.transform(grid)) > 0)
    assert np.all(np.diff(Calibrator("isotonic").fit(scores, labels).transform(grid)) >= 0)
    restored = Calibrator.from_dict(temp.to_dict())
    assert np.array_equal(restored.transform(grid), temp.transform(grid))


def test_reason_codes_name_real_features_and_sum_to_the_raw_score(frames):
    train, calibration, test = split(frames)
    model = ChurnModel(n_estimators=80).fit(train, calibration)
    contributions = model.contributions(test)
    assert contributions.shape == (len(test), len(model.feature_names_) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw_score(test), rtol=1e-6, atol=1e-6)
    reasons = model.reasons(test, top=3)
    assert len(reasons) == len(test) and any(reasons)
    for row in reasons:
        assert len(row) <= 3
        assert [r["contribution"] for r in row] == sorted((r["contribution"] for r in row), reverse=True)
        for r in row:
            assert r["contribution"] > 0 and r["text"]
            assert r["features"] and set(r["features"]) <= set(model.feature_names_)
            assert all(family_of(f) == r["code"] for f in r["features"])


def test_scores_and_reasons_are_those_of_one_thread_and_of_a_row_by_row_reading(frames):
    # Predictions use every core (each row is scored on its own) and the wording reads column arrays, not one
    # pandas row per customer: both give exactly what one thread and a row read through pandas give.
    from models.churn.reasons import reason_text, top_reasons

    train, calibration, test = split(frames)
    model = ChurnModel(n_estimators=60).fit(train, calibration)
    X = model.encoder_.transform(test)
    np.testing.assert_array_equal(model.raw_score(test), model.booster_.predict(X, raw_score=True, num_threads=1))
    contributions = model.booster_.predict(X, pred_contrib=True, num_threads=1)
    np.testing.assert_array_equal(model.contributions(test), contributions)
    reasons = top_reasons(contributions, model.feature_names_, test, 3)
    rows = test.reset_index(drop=True)
    assert any(reasons)
    for i, row in enumerate(reasons):
        assert [r["text"] for r in row] == [reason_text(r["code"], rows.iloc[i]) for r in row]


def test_reasons_order_families_as_a_stable_sort_of_each_row_does():
    """Ties keep the families' order, a contribution below the floor ends the list, at most ``top``."""
    from models.churn.reasons import MIN_CONTRIBUTION, top_reasons

    names = ["recency_days", "gap_median_days", "frequency", "orders_30d", "tenure_days", "spend_trend_90d"]
    rng = np.random.default_rng(3)
    contributions = np.round(rng.normal(0, 0.2, (200, len(names) + 1)), 1)  # rounding makes ties
    contributions[:5, :-1] = 0.3  # every family tied
    frame = pd.DataFrame(rng.random((200, len(names))) * 90, columns=names)
    families = ["frequency", "recency", "rhythm", "spend_trend", "tenure"]  # the families, sorted
    per_family = np.stack([contributions[:, [i for i, f in enumerate(names) if family_of(f) == fam]].sum(axis=1)
                           for fam in families], axis=1)
    for top in (1, 3, 10):
        found = top_reasons(contributions, names, frame, top)
        for i, reasons in enumerate(found):
            expected = []
            for j in np.argsort(-per_family[i], kind="stable")[:top]:
                if per_family[i, j] < MIN_CONTRIBUTION:
                    break
                expected.append((families[j], round(float(per_family[i, j]), 4)))
            assert [(r["code"], r["contribution"]) for r in reasons] == expected


def test_reason_wording_uses_the_customers_values():
    row = pd.Series({"recency_days": 143.0, "gap_median_days": 47.0, "spend_trend_90d": -0.5,
                     "complaints_90d": 2.0})
    assert render(reason_text("recency", row)) == "no purchase for 143 days, 3.0x longer than usual"
    assert render(reason_text("spend_trend", row)) == "spend down 67% on the previous quarter"
    assert render(reason_text("complaints", row)) == "2 complaints in 90 days"
    # The same message in Chinese, numbers and durations formatted for it; the code stays the same.
    assert render(reason_text("recency", row), "zh-CN") == "已143天未购买，比平时长 3.0 倍"
    assert render(reason_text("spend_trend", row), "zh-CN") == "消费比上一个季度减少 67%"
    assert code_of(reason_text("complaints", row)) == "churn.complaints"


def test_save_load_gives_identical_scores(frames, tmp_path):
    train, calibration, test = split(frames)
    model = ChurnModel(n_estimators=50).fit(train, calibration)
    restored = ChurnModel.load(model.save(tmp_path / "churn"))
    np.testing.assert_array_equal(restored.predict_proba(test), model.predict_proba(test))
    pd.testing.assert_frame_equal(customer_scores_frame(restored, test), customer_scores_frame(model, test))


def test_fit_needs_labels_and_two_classes(frames):
    from features.exceptions import DataError

    train, _, _ = split(frames)
    with pytest.raises(DataError, match="no 'churned' column"):
        ChurnModel().fit(train.drop(columns=["churned"]))
    with pytest.raises(DataError, match="one class only"):
        ChurnModel().fit(train.assign(churned=1))


def test_a_trained_column_missing_from_the_data_is_a_one_line_error_naming_it(frames):
    from features.exceptions import DataError

    train, calibration, test = split(frames)
    model = ChurnModel(n_estimators=20).fit(train, calibration)
    assert "complaints_90d" in model.feature_names_
    with pytest.raises(DataError, match="^feature column 'complaints_90d' the model was trained on") as err:
        model.predict_proba(test.drop(columns=["complaints_90d"]))
    assert "\n" not in str(err.value)
    events = [c for c in model.feature_names_ if c.startswith("views_")]
    with pytest.raises(DataError, match=f"'{events[0]}' \\(and {len(events) - 1} more\\)"):
        model.predict_proba(test.drop(columns=events))


def test_the_model_defaults_are_the_configs_defaults_and_the_shipped_yaml_repeats_none():
    """One source of every churn default: ChurnModelConfig. The shipped YAML changes nothing, so the product
    trains with exactly the defaults a bare ChurnModel has."""
    from features.configfile import read_yaml
    from features.presets import CONFIG_DIR
    from models.churn.config import ChurnModelConfig

    shipped = ChurnConfig.load(CONFIG_DIR / "churn.yaml")
    assert shipped == ChurnConfig()
    assert read_yaml(CONFIG_DIR / "churn.yaml") == {}
    params = ChurnModel().get_params()
    assert {k: params[k] for k in ChurnModelConfig.model_fields if k in params} == {
        k: v for k, v in ChurnModelConfig().model_dump().items() if k in params}
    assert (params["n_estimators"], params["learning_rate"], params["num_leaves"]) == (400, 0.02, 7)


def test_evaluation_never_uses_data_after_T(tables):
    """Changing everything after day T (except the last row, which fixes T) changes labels, never scores."""
    config = ChurnConfig.from_dict({"training": {"max_cutoffs": 4, "step_days": 30}, "model": {"n_estimators": 60}})
    first = evaluate_churn(tables, HORIZON, config)
    cutoff = evaluation_cutoff(tables, HORIZON)
    tx = tables["transactions"].copy()
    after = (tx["timestamp"] >= cutoff).to_numpy().copy()
    after[tx["timestamp"].to_numpy().argmax()] = False
    rng = np.random.default_rng(1)
    tx.loc[after, "amount"] = rng.gamma(2.0, 50.0, after.sum())
    tx.loc[after, "customer_id"] = rng.choice(tx["customer_id"].unique(), after.sum())
    changed = {**tables, "transactions": tx}
    second = evaluate_churn(changed, HORIZON, config)
    assert evaluation_cutoff(changed, HORIZON) == cutoff
    assert not np.array_equal(first.labels, second.labels)
    for name in first.scores:
        np.testing.assert_array_equal(first.scores[name], second.scores[name], err_msg=name)
    assert first.metrics["clientele"]["roc_auc"] > first.metrics["recency"]["roc_auc"] - 0.05


def test_the_evaluations_peer_boosted_beside_the_model_is_the_peer_fitted_alone(tables):
    from training.churn import fit_churn, training_cutoffs

    config = ChurnConfig.from_dict({"training": {"max_cutoffs": 4, "step_days": 30}, "model": {"n_estimators": 60}})
    evaluation = evaluate_churn(tables, HORIZON, config)
    cutoff = evaluation_cutoff(tables, HORIZON)
    frames = training_frames(tables, HORIZON, cutoffs=training_cutoffs(tables, cutoff, HORIZON, config))
    rfm = ChurnModel(**{**config.model.model_dump(), "calibration": "none"},
                     features=list(config.rfm_features)).fit(frames)
    np.testing.assert_array_equal(evaluation.probabilities["lightgbm_rfm"], rfm.predict_proba(evaluation.test_frame))
    alone = fit_churn(tables, cutoff, HORIZON, config, frames=frames)
    np.testing.assert_array_equal(evaluation.probabilities["clientele"],
                                  alone.model.predict_proba(evaluation.test_frame))


def test_past_the_row_budget_the_training_rows_are_those_of_a_share_of_the_customers(tables):
    from features.pipeline import CUTOFF
    from training.churn import fit_churn, training_cutoffs, training_sample

    config = ChurnConfig()
    cutoff = evaluation_cutoff(tables, 90)
    cutoffs = training_cutoffs(tables, cutoff, 90, config)
    full = training_frames(tables, 90, cutoffs=cutoffs)
    budget = ChurnConfig.from_dict({"training": {"max_rows": len(full) // 3}})
    sample = training_sample(tables, len(cutoffs), budget)
    kept = sample["transactions"]["customer_id"].unique()
    assert 0 < len(kept) <= len(full) // 3 // len(cutoffs)
    assert set(sample["customers"]["customer_id"]) <= set(kept)
    sampled = training_frames(sample, 90, cutoffs=cutoffs)
    # Each sampled customer's rows are exactly their rows of the full frames: features and labels are their own.
    expected = full[full["customer_id"].isin(kept)].sort_values([CUTOFF, "customer_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(sampled.sort_values([CUTOFF, "customer_id"]).reset_index(drop=True), expected)
    assert training_sample(tables, len(cutoffs), config) is tables  # within the default budget: every customer
    assert fit_churn(tables, cutoff, 90, budget).train_rows < len(full) // 3
