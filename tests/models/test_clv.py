"""Tests of the CLV models: BG/NBD, Gamma-Gamma and the discounted lifetime value built on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.clv_summary import clv_summary
from features.exceptions import ClienteleError, ConfigError, DataError
from models.clv import BetaGeoModel, GammaGammaModel, LifetimeValueModel, customer_lifetime_value
from models.clv import bgnbd

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"

# Fader, Hardie & Lee (2005) and Fader & Hardie (2013), CDNOW 1/10th sample, 39-week calibration.
CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_BGNBD_LL = -9582.4
CDNOW_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def _fitted_bgnbd(**params: float) -> BetaGeoModel:
    model = BetaGeoModel()
    model.params_ = dict(params)
    return model


def _simulate_bgnbd(rng, n, r, alpha, a, b, T, t_holdout):
    """Draw BG/NBD customers; return calibration (x, t_x, T) and repeat purchases in (T, T + t_holdout]."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    end = T + t_holdout
    t_last, x, tx, holdout = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        nxt = t_last + rng.exponential(1.0, n) / lam
        active &= nxt <= end
        in_cal = active & (nxt <= T)
        x += in_cal
        tx = np.where(in_cal, nxt, tx)
        holdout += active & ~in_cal
        t_last = np.where(active, nxt, t_last)
        active &= rng.random(n) >= p  # dropout happens right after a repeat purchase
    return x, tx, T, holdout


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(7)
    n = 20_000
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
    x, tx, T, holdout = _simulate_bgnbd(rng, n, *truth.values(), rng.uniform(20, 52, n), 39.0)
    summary = pd.DataFrame(
        {"frequency": x, "recency": tx, "T": T, "monetary_value": np.zeros(n)},
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    # Spend: each customer's mean is p / nu with nu ~ Gamma(q, gamma); their repeat purchases average it.
    nu = rng.gamma(4.0, 1.0 / 20.0, n)
    k = np.maximum(x, 1.0)
    summary["monetary_value"] = np.where(x > 0, rng.gamma(3.0 * k, 1.0 / (nu * k)), 0.0)
    return truth, summary, holdout


@pytest.fixture(scope="module")
def simulated_fit(simulated) -> BetaGeoModel:
    return BetaGeoModel().fit(simulated[1])


@pytest.fixture(scope="module")
def cdnow():
    tx = pd.read_parquet(_dataset("cdnow_sample.parquet"))
    # Calibration to 1997-09-30; the published analyses count the 8 customers whose purchases were all $0.
    return clv_summary(tx, pd.Timestamp("1997-10-01"), time_unit_days=7.0, count_zero_amount=True)


# ---------------------------------------------------------------------- published CDNOW fit


@pytest.mark.realdata
def test_cdnow_bgnbd_reproduces_published_fit(cdnow: pd.DataFrame) -> None:
    assert len(cdnow) == 2357 and cdnow["frequency"].sum() == 2457  # the README's calibration set-up
    model = BetaGeoModel().fit(cdnow)
    for name, published in CDNOW_BGNBD.items():
        assert model.params_[name] == pytest.approx(published, rel=0.01), name
    assert model.log_likelihood_ == pytest.approx(CDNOW_BGNBD_LL, abs=0.1)
    assert model.converged_


@pytest.mark.realdata
def test_cdnow_gamma_gamma_reproduces_published_fit(cdnow: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(cdnow)
    assert model.n_customers_ == 946
    for name, published in CDNOW_GAMMA_GAMMA.items():
        assert model.params_[name] == pytest.approx(published, rel=0.01), name


# ---------------------------------------------------------------------- BG/NBD behaviour


def test_p_alive_is_one_without_repeat_purchases() -> None:
    model = _fitted_bgnbd(**CDNOW_BGNBD)
    # BG/NBD customers can only drop out right after a repeat purchase (FHL 2005, eq. 11).
    assert np.all(model.p_alive(0, 0, np.array([0.0, 1.0, 39.0, 500.0])) == 1.0)
    assert np.all(model.p_alive([1, 5, 30], [10.0, 10.0, 10.0], 39.0) < 1.0)


def test_expected_purchases_increase_with_frequency_for_a_recent_customer() -> None:
    model = _fitted_bgnbd(**CDNOW_BGNBD)
    x = np.arange(0, 60)
    recent = model.expected_purchases(39.0, x, 38.0, 39.0)
    assert np.all(np.diff(recent) > 0)
    # At fixed frequency, a more recent last purchase means more purchases to come.
    assert np.all(np.diff(model.expected_purchases(39.0, 5, np.linspace(1, 39, 20), 39.0)) > 0)
    # And a long-silent heavy buyer is probably gone: P(alive) falls with frequency at low recency.
    assert np.all(np.diff(model.p_alive(x[1:], 5.0, 39.0)) < 0)


def test_expected_purchases_match_published_formula_at_high_precision() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50

    def exact(r, alpha, a, b, t, x, tx, T):  # FHL 2005, eq. 10, as printed
        r, alpha, a, b, t, x, tx, T = map(mpmath.mpf, (r, alpha, a, b, t, x, tx, T))
        z = t / (alpha + T + t)
        hyp = mpmath.hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        return float(head / (1 + (a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x) if x > 0 else 0)))

    cases = [
        ((0.243, 4.414, 0.793, 2.426), (39.0, 0, 0.0, 38.86)),
        ((0.243, 4.414, 0.793, 2.426), (39.0, 2, 30.43, 38.86)),
        ((0.243, 4.414, 0.793, 2.426), (52.0, 29, 38.0, 38.86)),
        # Online Retail in days with wholesale-sized histories: the printed form gives inf * 0 = NaN in float64.
        ((0.8265, 68.9, 0.0034, 6.745), (365.0, 1500, 370.0, 373.0)),
        ((0.8265, 68.9, 0.0034, 6.745), (3650.0, 3000, 370.0, 373.0)),
        ((0.72, 9.42, 7.8e-7, 28717.0), (5200.0, 79, 38.3, 39.0)),  # dropout all but absent
        ((0.5, 30.0, 1.0 + 1e-8, 3.0), (52.0, 5, 20.0, 53.0)),  # a = 1 is a removable 0/0
    ]
    for params, (t, x, tx, T) in cases:
        got = _fitted_bgnbd(**dict(zip("r alpha a b".split(), params))).expected_purchases(t, x, tx, T)
        assert np.isfinite(got)
        assert got == pytest.approx(exact(*params, t, x, tx, T), rel=1e-7), (params, t, x)


def test_parameter_recovery_on_simulated_bgnbd(simulated, simulated_fit) -> None:
    truth, _, _ = simulated
    model = simulated_fit
    assert model.r_ == pytest.approx(truth["r"], rel=0.05)
    assert model.alpha_ == pytest.approx(truth["alpha"], rel=0.05)
    # a and b are individually weakly identified at this size; their mean dropout a / (a + b) is not.
    assert model.a_ == pytest.approx(truth["a"], rel=0.25)
    assert model.b_ == pytest.approx(truth["b"], rel=0.25)
    assert model.a_ / (model.a_ + model.b_) == pytest.approx(truth["a"] / (truth["a"] + truth["b"]), rel=0.08)


def test_forecasts_match_simulated_holdout(simulated, simulated_fit) -> None:
    truth, summary, holdout = simulated
    x, tx, T = summary["frequency"], summary["recency"], summary["T"]
    # E[X(T)] for new customers against the simulated calibration counts, at the true parameters.
    model = _fitted_bgnbd(**truth)
    assert model.expected_purchases_new(T.to_numpy()).mean() == pytest.approx(x.mean(), rel=0.03)
    # Conditional expectations summed over customers against the purchases they then made.
    for m in (model, simulated_fit):
        predicted = m.expected_purchases(39.0, x, tx, T)
        assert predicted.sum() == pytest.approx(holdout.sum(), rel=0.04)
        heavy = x >= 5
        assert predicted[heavy].sum() == pytest.approx(holdout[heavy].sum(), rel=0.08)


def test_gamma_gamma_parameter_recovery(simulated) -> None:
    _, summary, _ = simulated
    model = GammaGammaModel().fit(summary)
    assert model.params_ == pytest.approx({"p": 3.0, "q": 4.0, "gamma": 20.0}, rel=0.15)
    spend = model.expected_spend(summary["frequency"], summary["monetary_value"])
    assert isinstance(spend, pd.Series) and spend.index.equals(summary.index)
    np.testing.assert_allclose(spend[summary["frequency"] == 0], model.mean_spend(), rtol=1e-12)
    # The estimate shrinks a customer's own mean towards the population mean, less the more repeats they made.
    few = model.expected_spend(1, 500.0)
    many = model.expected_spend(50, 500.0)
    assert model.mean_spend() < few < many < 500.0


# ---------------------------------------------------------------------- robustness


@pytest.mark.realdata
def test_online_retail_fit_with_wholesale_customers() -> None:
    raw = pd.read_parquet(
        _dataset("online_retail.parquet"),
        columns=["InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID"],
    )
    raw = raw[raw["CustomerID"].notna() & ~raw["InvoiceNo"].str.startswith("C") & (raw["UnitPrice"] > 0)]
    tx = pd.DataFrame({
        "customer_id": raw["CustomerID"].astype("int64").astype(str),
        "timestamp": raw["InvoiceDate"],
        "amount": raw["Quantity"] * raw["UnitPrice"],
    })
    # Plus a wholesale account bigger than any in the file: an order every day, each worth a million.
    days = pd.date_range("2010-12-01 10:00", "2011-12-08 10:00", freq="D")
    tx = pd.concat([tx, pd.DataFrame({"customer_id": "WHOLESALE", "timestamp": days, "amount": 1e6})])
    for unit in (7.0, 1.0):
        summary = clv_summary(tx, pd.Timestamp("2011-12-10"), time_unit_days=unit)
        assert summary["frequency"].max() > 300 and summary["monetary_value"].max() >= 1e6
        model = LifetimeValueModel(time_unit_days=unit).fit(summary)
        for fitted in (model.transaction_model_, model.spend_model_):
            assert fitted.converged_ and all(np.isfinite(v) and v > 0 for v in fitted.params_.values())
        scores = model.predict(summary)
        assert np.isfinite(scores.to_numpy()).all()
        assert scores["p_alive"].between(0, 1).all() and (scores[["expected_purchases", "clv"]] >= 0).all().all()
        assert scores["clv"].idxmax() == "WHOLESALE"


def test_fit_failure_is_one_clear_error(monkeypatch) -> None:
    summary = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 3.0, 9.0], "T": [10.0, 10.0, 10.0]})
    nan_likelihood = lambda params, x, tx, T: (np.full(len(T), np.nan), np.full((4, len(T)), np.nan))  # noqa: E731
    monkeypatch.setattr(bgnbd, "_log_likelihood_and_grad", nan_likelihood)
    with pytest.raises(ClienteleError, match="BG/NBD fit failed") as err:
        BetaGeoModel().fit(summary)
    assert "\n" not in str(err.value)
    assert not hasattr(BetaGeoModel(), "params_")


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        (pd.DataFrame({"frequency": [], "recency": [], "T": [], "monetary_value": []}), "empty"),
        (pd.DataFrame({"frequency": [1.0], "recency": [1.0]}), "'T' is missing"),
        (pd.DataFrame({"frequency": [1.0], "recency": [5.0], "T": [4.0]}), "recency' exceeds T"),
        (pd.DataFrame({"frequency": [1.5], "recency": [1.0], "T": [4.0]}), "whole number"),
        (pd.DataFrame({"frequency": [np.nan], "recency": [1.0], "T": [4.0]}), "'frequency' has nan"),
        (pd.DataFrame({"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [4.0, 9.0]}), "no customer has a"),
    ],
)
def test_invalid_summaries_are_rejected(summary: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        BetaGeoModel().fit(summary)


def test_gamma_gamma_without_repeat_spend_is_rejected() -> None:
    with pytest.raises(DataError, match="no customer has a repeat purchase"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [0.0, 0.0], "monetary_value": [0.0, 0.0]}))


def test_unfitted_model_says_so() -> None:
    with pytest.raises(ClienteleError, match="not fitted"):
        BetaGeoModel().p_alive(1, 1, 2)


# ---------------------------------------------------------------------- lifetime value


def test_clv_discounting(simulated) -> None:
    _, summary, _ = simulated
    summary = summary.iloc[:500]
    bg = _fitted_bgnbd(r=0.5, alpha=6.0, a=0.7, b=2.5)
    gg = GammaGammaModel()
    gg.params_ = {"p": 3.0, "q": 4.0, "gamma": 20.0}
    undiscounted = customer_lifetime_value(bg, gg, summary, time_unit_days=7.0, annual_discount_rate=0.0)
    # Without discounting the monthly pieces add up to purchases over the year x spend per purchase.
    year = bg.expected_purchases(365.25 / 7.0, summary["frequency"], summary["recency"], summary["T"])
    np.testing.assert_allclose(undiscounted["expected_purchases"], year, rtol=1e-12)
    np.testing.assert_allclose(undiscounted["clv"], year * undiscounted["expected_spend"], rtol=1e-10)
    discounted = customer_lifetime_value(bg, gg, summary, time_unit_days=7.0, annual_discount_rate=0.10)
    ratio = discounted["clv"] / undiscounted["clv"]
    # Each month is discounted by between 1 / 1.1^(1/12) and 1 / 1.1.
    assert ratio.between(1 / 1.1, 1.1 ** (-1 / 12)).all()
    half_margin = customer_lifetime_value(bg, gg, summary, time_unit_days=7.0, margin=0.5)
    np.testing.assert_allclose(half_margin["clv"], 0.5 * discounted["clv"], rtol=1e-12)
    longer = customer_lifetime_value(bg, gg, summary, time_unit_days=7.0, horizon_months=24)
    assert (longer["clv"] > discounted["clv"]).all()


def test_clv_checks_time_unit_and_settings(simulated) -> None:
    _, summary, _ = simulated
    summary = summary.iloc[:50].copy()
    model = LifetimeValueModel(time_unit_days=7.0).fit(summary)
    summary.attrs["time_unit_days"] = 1.0
    with pytest.raises(ConfigError, match="time_unit_days"):
        model.predict(summary)
    with pytest.raises(ConfigError, match="horizon_months"):
        customer_lifetime_value(model.transaction_model_, model.spend_model_, summary, horizon_months=0)


def test_save_load_round_trip(simulated, tmp_path: Path) -> None:
    summary = simulated[1].iloc[:3000]
    model = LifetimeValueModel(annual_discount_rate=0.08, horizon_months=18).fit(summary)
    before = model.predict(summary)
    restored = LifetimeValueModel.load(model.save(tmp_path / "clv.json"))
    pd.testing.assert_frame_equal(restored.predict(summary), before, check_exact=True)

    bg = BetaGeoModel.load(model.transaction_model_.save(tmp_path / "bgnbd.json"))
    gg = GammaGammaModel.load(model.spend_model_.save(tmp_path / "gg.json"))
    assert bg.params_ == model.transaction_model_.params_ and gg.params_ == model.spend_model_.params_
    assert bg.log_likelihood_ == model.transaction_model_.log_likelihood_
    x, tx, T = summary["frequency"], summary["recency"], summary["T"]
    original = model.transaction_model_.expected_purchases(52.0, x, tx, T)
    assert np.array_equal(bg.expected_purchases(52.0, x, tx, T), original)
    with pytest.raises(ClienteleError, match="not a saved BetaGeoModel"):
        BetaGeoModel.load(tmp_path / "gg.json")


def test_p_no_purchase_matches_simulation():
    """P(no purchase in t) against a Monte Carlo of the BG/NBD story for one customer's posterior."""
    model = BetaGeoModel()
    model.params_ = {"r": 0.8, "alpha": 5.0, "a": 0.6, "b": 2.5}
    x, tx, T, t = 3.0, 20.0, 30.0, 15.0
    got = float(model.p_no_purchase(t, x, tx, T))
    rng = np.random.default_rng(0)
    n = 400_000
    lam = rng.gamma(0.8 + x, 1.0 / (5.0 + T), n)
    alive = rng.random(n) < float(model.p_alive(x, tx, T))
    quiet = rng.random(n) < np.exp(-lam * t)
    assert got == pytest.approx(np.mean(~alive | quiet), abs=3e-3)
    assert float(model.p_no_purchase(t, 0.0, 0.0, T)) < 1.0
    assert float(model.p_no_purchase(0.0, x, tx, T)) == pytest.approx(1.0)  # nobody buys in no time
    # A long horizon leaves only the dead quiet.
    assert float(model.p_no_purchase(1e7, x, tx, T)) == pytest.approx(1 - float(model.p_alive(x, tx, T)), abs=1e-6)
