"""Customer segments: hand-checked RFM scores and segments, lifecycle stages, tiers, value at risk, row-order
independence and save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from features.customer import customer_features
from features.exceptions import ClienteleError, ConfigError, DataError
from models.segments import (SEGMENT_COLUMNS, CustomerSegmenter, LifecycleConfig, LifecycleStager, MembershipConfig,
                             MembershipTiers, RFMScorer, SegmentConfig, ValueTiers, Window, segment_customers,
                             value_at_risk)
from models.segments.rfm import cuts_beaten, quantile_cuts
from tests.features.fixtures import CUTOFF, tiny_tables

H = 90  # the beauty preset's churn horizon


def customer_frame(rows: list[dict]) -> pd.DataFrame:
    """A feature frame with the columns the segments read; unspecified values are those of an ordinary
    repeat buyer (recency 10 days, 300 days of tenure, a 30-day usual gap)."""
    defaults = {"recency_days": 10.0, "tenure_days": 300.0, "frequency": 5.0, "monetary_total": 500.0,
                "gap_median_days": 30.0, "gap_last_days": 30.0, "spend_365d": 300.0, "orders_365d": 3.0}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    if "overdue_ratio" not in frame.columns:
        frame["overdue_ratio"] = frame["recency_days"] / frame["gap_median_days"]
    if "customer_id" not in frame.columns:
        frame.insert(0, "customer_id", [f"c{i:02d}" for i in range(len(frame))])
    return frame


def ten_customers() -> pd.DataFrame:
    """Recency 10..100 days, frequency 1..10 orders, spend 100..1000: two customers per quintile."""
    return customer_frame([{"recency_days": 10.0 * k, "frequency": float(k), "monetary_total": 100.0 * k}
                           for k in range(1, 11)])


# ----------------------------------------------------------------------------------------------------- RFM


def test_rfm_scores_by_hand():
    scores = RFMScorer().fit_transform(ten_customers())
    assert scores["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # most recent first
    assert scores["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["rfm_code"].tolist()[:2] == ["511", "511"]


def test_tied_customers_share_the_score_of_the_lowest_quintile_they_cover():
    # Six one-time buyers out of ten: all get F = 1; 2 orders beat 60 % (F = 4); 3 and 4 beat 80 % and 90 %.
    frame = customer_frame([{"frequency": f} for f in [1, 1, 1, 1, 1, 1, 2, 2, 3, 4]])
    assert RFMScorer().fit_transform(frame)["f_score"].tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    # Everyone bought on the same day: nobody is strictly less recent than anybody else, so R = 1 for all.
    assert RFMScorer().fit_transform(customer_frame([{}] * 4))["r_score"].tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize(("recency", "frequency", "monetary", "segment"), [
    (10, 10, 1000, "champions"),            # R5 F5 M5
    (40, 10, 1000, "loyal_customers"),      # R4 FM5
    (10, 1, 100, "new_customers"),          # R5 FM1
    (40, 1, 100, "promising"),              # R4 FM1
    (10, 4, 400, "potential_loyalists"),    # R5 F2 M2
    (10, 6, 800, "champions"),              # R5 F3 M4: FM = 3.5, rounded half up to 4
    (50, 5, 500, "need_attention"),         # R3 F3 M3
    (60, 1, 100, "about_to_sleep"),         # R3 FM1
    (80, 7, 700, "at_risk"),                # R2 F4 M4
    (100, 10, 1000, "cannot_lose_them"),    # R1 FM5
    (70, 1, 300, "hibernating"),            # R2 F1 M2 -> FM 2 (half rounds up)
    (100, 1, 100, "lost"),                  # R1 FM1
    (15, 9.5, 150, "potential_loyalists"),  # between training values: R5 F5 M1, FM (5 + 1) / 2 = 3
])
def test_named_segments_by_hand(recency, frequency, monetary, segment):
    scorer = RFMScorer().fit(ten_customers())
    probe = customer_frame([{"recency_days": recency, "frequency": frequency, "monetary_total": monetary}])
    assert scorer.transform(probe)["rfm_segment"].iloc[0] == segment


def test_customers_without_a_purchase_are_prospects_and_not_learned_from():
    frame = pd.concat([ten_customers(), customer_frame([{"customer_id": "p", "recency_days": np.nan,
                                                         "frequency": 0.0, "monetary_total": 0.0}])])
    scorer = RFMScorer().fit(frame)
    assert scorer.n_customers_ == 10
    assert scorer.to_dict()["cuts"] == RFMScorer().fit(ten_customers()).to_dict()["cuts"]
    out = scorer.transform(frame).iloc[-1]
    assert out["rfm_segment"] == "prospect" and pd.isna(out["r_score"]) and pd.isna(out["rfm_code"])


@settings(max_examples=60, deadline=None)
@given(train=st.lists(st.integers(0, 12), min_size=1, max_size=40), probe=st.lists(st.integers(-1, 13), max_size=10),
       higher_is_better=st.booleans(), n_scores=st.integers(2, 9))
def test_score_is_one_plus_the_share_of_strictly_worse_training_customers(train, probe, higher_is_better, n_scores):
    # The definition in models/segments/rfm.py: score = 1 + min(n - 1, floor(n * share strictly worse)).
    shares = np.arange(1, n_scores) / n_scores
    cuts = quantile_cuts(np.array(train, float), shares, higher_is_better)
    values = np.array(train + probe, float)
    got = 1 + cuts_beaten(values, cuts, higher_is_better)
    t = np.array(train)
    worse = [(t < v).sum() if higher_is_better else (t > v).sum() for v in values]
    expected = [1 + min(n_scores - 1, n_scores * w // len(t)) for w in worse]
    assert got.tolist() == expected


# ----------------------------------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize(("case", "features", "stage"), [
    ("no purchase", {"recency_days": np.nan, "tenure_days": np.nan, "gap_median_days": np.nan,
                     "gap_last_days": np.nan}, "prospect"),
    ("beyond the horizon", {"recency_days": 100.0}, "lapsed"),
    ("exactly the horizon", {"recency_days": 90.0, "gap_median_days": 80.0}, "active"),
    ("first purchase 20 days ago", {"recency_days": 5.0, "tenure_days": 20.0}, "new"),
    ("new and already overdue", {"recency_days": 30.0, "tenure_days": 40.0, "gap_median_days": 2.0}, "new"),
    ("first purchase 45 days ago", {"recency_days": 5.0, "tenure_days": 45.0}, "active"),
    ("back after 200 days", {"recency_days": 10.0, "gap_last_days": 200.0, "gap_median_days": 100.0},
     "reactivated"),
    ("back, then quiet past the overdue ratio", {"recency_days": 40.0, "gap_last_days": 120.0,
                                                 "gap_median_days": 20.0}, "reactivated"),
    ("back, but the comeback is 60 days old", {"recency_days": 60.0, "gap_last_days": 200.0,
                                               "gap_median_days": 100.0}, "active"),
    ("a gap of exactly the horizon", {"recency_days": 10.0, "gap_last_days": 90.0}, "active"),
    ("twice the usual gap", {"recency_days": 60.0, "gap_median_days": 30.0}, "at_risk"),
    ("1.5 times the usual gap", {"recency_days": 45.0, "gap_median_days": 30.0}, "active"),
    ("one-time buyer past H/2", {"recency_days": 50.0, "tenure_days": 50.0, "gap_median_days": np.nan,
                                 "gap_last_days": np.nan}, "at_risk"),
    ("one-time buyer within H/2", {"recency_days": 45.0, "tenure_days": 45.0, "gap_median_days": np.nan,
                                   "gap_last_days": np.nan}, "active"),
    ("overdue but within H/4", {"recency_days": 10.0, "gap_median_days": 2.0}, "active"),
    ("overdue past H/4", {"recency_days": 23.0, "gap_median_days": 2.0}, "at_risk"),
    ("buys on cycle", {"recency_days": 20.0, "gap_median_days": 30.0}, "active"),
])
def test_lifecycle_stages_by_hand(case, features, stage):
    frame = customer_frame([features])
    assert LifecycleStager(horizon_days=H).fit(frame).predict(frame).iloc[0] == stage, case


def test_lifecycle_windows_follow_the_horizon_or_fixed_days():
    one_time = customer_frame([{"recency_days": 50.0, "tenure_days": 50.0, "gap_median_days": np.nan}])
    assert LifecycleStager(horizon_days=90).fit().predict(one_time).iloc[0] == "at_risk"
    assert LifecycleStager(horizon_days=365).fit().predict(one_time).iloc[0] == "new"  # jewellery: 50 < 182.5
    assert LifecycleStager(horizon_days=30).fit().predict(one_time).iloc[0] == "lapsed"  # grocery
    fixed = LifecycleConfig(new_within=Window(days=60))
    assert LifecycleStager(fixed, horizon_days=90).fit().predict(one_time).iloc[0] == "new"
    with pytest.raises(ConfigError, match="horizon"):
        LifecycleStager().fit()


def test_lifecycle_stages_of_real_features():
    # tiny_tables: c1 buys monthly (last 30 days ago), c2 first bought an hour before the cutoff,
    # c4 bought once 77 days ago, c5 signed up without buying.
    frame = customer_features(tiny_tables(), CUTOFF, population="all")
    stages = LifecycleStager(horizon_days=H).fit(frame).predict(frame)
    assert dict(zip(frame["customer_id"], stages)) == {"c1": "active", "c2": "new", "c4": "at_risk",
                                                       "c5": "prospect"}


# ------------------------------------------------------------------------------------------ value and tiers


def test_value_tiers_by_hand_and_missing_clv():
    tiers = ValueTiers().fit(np.arange(1.0, 11.0))
    assert tiers.predict(np.arange(1.0, 11.0)).tolist() == ["low"] * 5 + ["medium"] * 3 + ["high"] * 2
    assert tiers.predict(np.array([np.nan, 0.0, 100.0])).tolist()[1:] == ["low", "high"]
    assert pd.isna(tiers.predict(np.array([np.nan])).iloc[0])


@settings(max_examples=40, deadline=None)
@given(train=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=50),
       probe=st.lists(st.floats(-10, 2e4, allow_nan=False), min_size=2, max_size=20))
def test_value_tier_is_monotone_in_clv(train, probe):
    probe = np.sort(np.array(probe))
    codes = ValueTiers().fit(np.array(train)).predict(probe).cat.codes.to_numpy()
    assert (np.diff(codes) >= 0).all()


@pytest.mark.parametrize("qualify", ["any", "all"])
def test_membership_tier_is_monotone_in_spend_and_orders(qualify):
    rng = np.random.default_rng(0)
    train = customer_frame([{"spend_365d": s, "orders_365d": o}
                            for s, o in zip(rng.gamma(1.0, 500.0, 200).round(), rng.poisson(2.0, 200))])
    tiers = MembershipTiers(MembershipConfig(qualify=qualify)).fit(train)
    spend, orders = np.meshgrid(np.linspace(0, 4000, 41), np.arange(0, 12))
    grid = customer_frame([{"spend_365d": s, "orders_365d": o} for s, o in zip(spend.ravel(), orders.ravel())])
    codes = tiers.predict(grid).cat.codes.to_numpy().reshape(spend.shape)
    assert (np.diff(codes, axis=1) >= 0).all() and (np.diff(codes, axis=0) >= 0).all()
    assert codes.min() == 0 and codes.max() == 3  # basic .. platinum all reachable


def test_membership_tiers_by_hand():
    # Spend 0..19 and orders 0..19 (one customer each): cuts at 55 / 80 / 95 % are 10, 15 and 18.
    train = customer_frame([{"spend_365d": float(k), "orders_365d": float(k)} for k in range(20)])
    probes = customer_frame([{"spend_365d": s, "orders_365d": o}
                             for s, o in [(10, 0), (11, 0), (0, 16), (19, 0), (11, 16)]])
    anyone = MembershipTiers().fit(train)
    assert anyone.spend_cuts_ == [10.0, 15.0, 18.0]
    assert anyone.predict(probes).tolist() == ["basic", "silver", "gold", "platinum", "gold"]
    both = MembershipTiers(MembershipConfig(qualify="all")).fit(train)
    assert both.predict(probes).tolist() == ["basic", "basic", "basic", "basic", "silver"]


def test_value_at_risk_arithmetic():
    got = value_at_risk(np.array([0.5, 0.1, np.nan, 0.0, 1.0]), np.array([100.0, 50.0, 10.0, 80.0, 30.0]))
    np.testing.assert_allclose(got, [50.0, 5.0, np.nan, 0.0, 30.0])
    series = value_at_risk(pd.Series([0.2, 0.4], index=["a", "b"]), np.array([10.0, 5.0]))
    assert series.name == "value_at_risk" and series.to_dict() == {"a": 2.0, "b": 2.0}
    with pytest.raises(DataError, match="outside"):
        value_at_risk([1.2], [10.0])
    with pytest.raises(DataError, match="2 churn probabilities but 1"):
        value_at_risk([0.1, 0.2], [10.0])
    with pytest.raises(DataError, match="different indexes"):
        value_at_risk(pd.Series([0.1], index=["a"]), pd.Series([1.0], index=["b"]))


# ------------------------------------------------------------------------------------ the whole segmenter


def test_segment_customers_on_real_features_by_hand():
    frame = customer_features(tiny_tables(), CUTOFF, population="all")
    clv = pd.Series([10.0, 100.0, 50.0], index=pd.Index(["c4", "c1", "c2"], name="customer_id"))  # no c5
    segmenter = CustomerSegmenter(horizon_days=H).fit(frame, clv=clv)
    out = segment_customers(frame, np.array([0.1, 0.5, 0.9, 0.2]), clv, segmenter).set_index("customer_id")
    assert list(out.reset_index().columns) == list(SEGMENT_COLUMNS)
    # Purchasers c1 (recency 30, 3 orders, 70), c2 (1 hour, 1, 5), c4 (77 days, 1, 12); c5 never bought.
    assert out["rfm_code"].tolist()[:3] == ["244", "411", "112"]
    assert out["rfm_segment"].tolist() == ["at_risk", "promising", "lost", "prospect"]
    assert out["lifecycle_stage"].tolist() == ["active", "new", "at_risk", "prospect"]
    np.testing.assert_allclose(out["value_at_risk"], [10.0, 25.0, 9.0, np.nan])
    assert out.loc["c1", "clv"] == 100.0 and pd.isna(out.loc["c5", "value_tier"])
    assert out.loc["c5", "membership_tier"] == "basic" and out.loc["c1", "membership_tier"] == "silver"


def test_segment_customers_matches_values_to_rows():
    frame = ten_customers()
    segmenter = CustomerSegmenter(horizon_days=H).fit(frame, clv=np.arange(10.0))
    positional = segment_customers(frame, np.full(10, 0.5), np.arange(10.0), segmenter)
    by_id = pd.Series(np.arange(10.0)[::-1], index=pd.Index(frame["customer_id"][::-1], name="customer_id"))
    matched = segment_customers(frame, pd.Series(np.full(10, 0.5), index=frame.index), by_id, segmenter)
    pd.testing.assert_frame_equal(positional, matched)
    assert segment_customers(frame, None, None, segmenter)[["clv", "value_at_risk", "value_tier"]].isna().all().all()
    with pytest.raises(DataError, match="3 values for 10 customers"):
        segment_customers(frame, np.ones(3) / 2, None, segmenter)
    with pytest.raises(DataError, match="neither indexed"):
        segment_customers(frame, pd.Series(np.ones(10) / 2, index=range(5, 15)), None, segmenter)
    with pytest.raises(ClienteleError, match="without CLV"):
        segment_customers(frame, None, np.ones(10), CustomerSegmenter(horizon_days=H).fit(frame))
    with pytest.raises(ClienteleError, match="not fitted"):
        segment_customers(frame, None, None, CustomerSegmenter(horizon_days=H))


def test_a_missing_feature_column_is_named():
    with pytest.raises(DataError, match="'orders_365d'.*segments.membership"):
        CustomerSegmenter(horizon_days=H).fit(ten_customers().drop(columns="orders_365d"))


def test_to_dict_from_dict_round_trip_through_json():
    frame = customer_features(tiny_tables(), CUTOFF, population="all")
    config = SegmentConfig.from_dict({"lifecycle": {"new_within": {"days": 10}},
                                      "value_tiers": {"shares": {"bronze": 0.6, "gold": 0.4}}})
    segmenter = CustomerSegmenter(horizon_days=H, config=config).fit(frame, clv=np.array([3.0, 2.0, 1.0, 0.0]))
    state = json.loads(json.dumps(segmenter.to_dict()))
    loaded = CustomerSegmenter.from_dict(state)
    assert loaded.settings == config and loaded.to_dict() == segmenter.to_dict()
    probability, clv = np.array([0.1, 0.2, 0.3, 0.4]), np.array([3.0, 2.0, 1.0, np.nan])
    pd.testing.assert_frame_equal(segment_customers(frame, probability, clv, loaded),
                                  segment_customers(frame, probability, clv, segmenter))
    unfitted_tiers = CustomerSegmenter(horizon_days=H).fit(frame)
    assert CustomerSegmenter.from_dict(json.loads(json.dumps(unfitted_tiers.to_dict()))).value_tiers_ is None
    with pytest.raises(ClienteleError, match="not a saved CustomerSegmenter"):
        CustomerSegmenter.from_dict({**state, "version": 99})


# -------------------------------------------------------------------------------- row-order independence


@st.composite
def feature_frames(draw):
    """Small feature frames with many ties (values from short lists) and some prospects."""
    n = draw(st.integers(1, 20))
    rows = []
    for i in range(n):
        if draw(st.integers(0, 9)) == 0:
            rows.append({"customer_id": f"c{i}", "recency_days": np.nan, "tenure_days": np.nan, "frequency": 0.0,
                         "monetary_total": 0.0, "gap_median_days": np.nan, "gap_last_days": np.nan,
                         "spend_365d": 0.0, "orders_365d": 0.0})
            continue
        recency = draw(st.sampled_from([0.5, 3.0, 10.0, 30.0, 44.0, 60.0, 90.0, 120.0, 400.0]))
        frequency = draw(st.sampled_from([1.0, 1.0, 2.0, 3.0, 8.0]))
        repeat = frequency > 1
        rows.append({"customer_id": f"c{i}", "recency_days": recency,
                     "tenure_days": recency + draw(st.sampled_from([0.0, 20.0, 200.0])) * repeat,
                     "frequency": frequency, "monetary_total": frequency * draw(st.sampled_from([5.0, 20.0, 80.0])),
                     "gap_median_days": draw(st.sampled_from([2.0, 30.0, 100.0])) if repeat else np.nan,
                     "gap_last_days": draw(st.sampled_from([2.0, 30.0, 200.0])) if repeat else np.nan,
                     "spend_365d": draw(st.sampled_from([0.0, 5.0, 50.0])),
                     "orders_365d": draw(st.sampled_from([0.0, 1.0, 4.0]))})
    frame = customer_frame(rows)
    clv = np.array([draw(st.sampled_from([np.nan, 0.0, 10.0, 10.0, 250.0])) for _ in range(n)])
    probability = np.array([draw(st.sampled_from([0.0, 0.3, 0.9])) for _ in range(n)])
    return frame, clv, probability


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=feature_frames(), seed=st.integers(0, 2**32 - 1))
def test_segments_do_not_depend_on_row_order(data, seed):
    frame, clv, probability = data
    assume(np.isfinite(frame["recency_days"]).any() and np.isfinite(clv).any())  # else fit rightly refuses
    order = np.random.default_rng(seed).permutation(len(frame))
    shuffled = frame.iloc[order].reset_index(drop=True)
    fitted = CustomerSegmenter(horizon_days=H).fit(frame, clv=clv)
    refitted = CustomerSegmenter(horizon_days=H).fit(shuffled, clv=clv[order])
    assert fitted.to_dict() == refitted.to_dict()  # thresholds learned from values, not positions

    bulk = segment_customers(frame, probability, clv, fitted).set_index("customer_id")
    again = segment_customers(shuffled, probability[order], clv[order], refitted).set_index("customer_id")
    pd.testing.assert_frame_equal(bulk, again.loc[bulk.index])
    # Serving scores one customer at a time with the thresholds of training time.
    alone = pd.concat([segment_customers(frame.iloc[[i]], probability[[i]], clv[[i]], fitted)
                       for i in range(len(frame))]).set_index("customer_id")
    pd.testing.assert_frame_equal(alone, bulk)


# ------------------------------------------------------------------------------------------------- config


def test_shipped_config_parses():
    config = SegmentConfig.load()
    assert config.rfm.scores == 5 and set(config.rfm.segment_names) >= {
        "champions", "loyal_customers", "potential_loyalists", "new_customers", "promising", "need_attention",
        "about_to_sleep", "at_risk", "cannot_lose_them", "hibernating", "lost", "prospect"}
    assert list(config.membership.shares) == ["basic", "silver", "gold", "platinum"]


@pytest.mark.parametrize(("data", "message"), [
    ({"value_tiers": {"shares": {"low": 0.5, "high": 0.6}}}, "value_tiers.shares.*sum to 1"),
    ({"rfm": {"scores": 4}}, "rfm.*one row per R score 1..4"),
    ({"lifecycle": {"new_within": {"days": 30, "horizon_share": 0.5}}}, "lifecycle.new_within.*exactly one"),
    ({"membership": {"qualify": "either"}}, "membership.qualify"),
    ({"segments": {}}, "segments.*Extra inputs"),
])
def test_bad_config_is_a_config_error_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        SegmentConfig.from_dict(data)
