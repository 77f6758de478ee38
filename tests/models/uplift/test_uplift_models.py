"""The uplift models recover the synthetic generator's known effects: persuadables first, sleeping dogs last."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from features.campaigns import campaign_features, campaign_outcomes, campaigns_table, treatment_flag
from features.columns import Columns as C
from features.synthetic import simulate
from models.uplift.config import BoosterSettings
from models.uplift.learners import LEARNERS
from models.uplift.model import UpliftModel


@pytest.fixture(scope="module")
def campaigns():
    sim = simulate("beauty", 6000, seed=4)
    tables = sim.tables
    rows = campaign_outcomes(tables, campaigns_table(tables))
    features = campaign_features(tables, rows)
    truth = sim.campaign_truth.set_index([C.campaign_id, C.customer_id])
    true = truth.loc[list(zip(rows[C.campaign_id], rows[C.customer_id]))].reset_index(drop=True)
    return rows, features, true


def _split(campaigns):
    rows, features, true = campaigns
    train = (rows[C.campaign_id] == "winback-1").to_numpy()
    return rows, features, true, train, ~train


def test_true_effects_are_heterogeneous_and_observed_outcomes_follow_them(campaigns):
    rows, _, true = campaigns
    treated = treatment_flag(rows) == 1
    observed = np.where(treated, true["purchased_if_contacted"], true["purchased_if_not"])
    assert np.array_equal(rows["purchased"].to_numpy(), observed)  # the outcome read back is the simulated one
    by_type = true.groupby("response_type")["true_uplift"].mean()
    assert by_type["persuadable"] > 0.2 > by_type["sure_thing"] == 0 == by_type["lost_cause"] > by_type["sleeping_dog"]


@pytest.mark.parametrize("name", ["clientele", "x_learner", "t_learner", "dr_learner", "class_transformation",
                                  "s_learner"])
def test_models_recover_the_true_uplift_ordering(campaigns, name):
    rows, features, true, train, test = _split(campaigns)
    y = rows["purchased"].to_numpy()
    t = treatment_flag(rows)
    model = UpliftModel(random_state=0) if name == "clientele" else LEARNERS[name](
        BoosterSettings(num_leaves=4, min_child_samples=50), random_state=0)
    model.fit(features[train], t[train], y[train])
    predicted = pd.Series(model.predict(features[test]))
    by_type = predicted.groupby(true.loc[test, "response_type"].to_numpy()).mean()
    assert by_type["persuadable"] > by_type["sure_thing"]
    assert by_type["persuadable"] > by_type["lost_cause"]
    assert by_type["persuadable"] > by_type["sleeping_dog"]
    assert spearmanr(predicted, true.loc[test, "true_uplift"]).statistic > 0.1


def test_fit_refuses_a_campaign_without_control():
    from features.exceptions import DataError

    X = pd.DataFrame({"a": np.arange(10.0)})
    with pytest.raises(DataError, match="treated and control"):
        UpliftModel().fit(X, np.ones(10), np.r_[np.ones(5), np.zeros(5)])
