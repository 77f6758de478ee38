"""Campaigns end to end on synthetic data: plan -> simulated response -> report, with intervals that cover the
generator's true effect; the planning rules (marketing consent, erasure, contact cap, stratified holdout)."""

import json

import numpy as np
import pandas as pd
import pytest

from features.i18n import code_of, render
from features.campaign_sim import CampaignEffects, run_campaign
from features.columns import Columns as C
from features.labels import data_end
from features.privacy import ErasureList, pseudonymise
from features.synthetic import simulate, write_tables
from models.uplift.config import UpliftConfig
from training.campaigns import campaign_report, candidates, plan_campaign
from tests.training.test_cli import clientele

CONFIG = UpliftConfig()


def _planned(seed, customers=3000, **kwargs):
    sim = simulate("beauty", customers, seed)
    tables = sim.tables
    sent = (data_end(tables) - pd.Timedelta(days=20)).normalize()
    frame = candidates(tables, sent, CONFIG)
    options = {"size": 1200, "holdout": 0.5, "seed": seed, "config": CONFIG, **kwargs}
    return sim, tables, sent, frame, plan_campaign(frame, tables, "test", sent, **options)


@pytest.fixture(scope="module")
def planned():
    return _planned(11, target="recency_days > 14")


def test_report_intervals_cover_the_true_effect_in_most_seeds():
    covered = {"response_rate": 0, "revenue_per_customer": 0}
    seeds = (0, 1, 2, 3)
    for seed in seeds:
        sim, tables, _, _, plan = _planned(seed)
        dropout = pd.Series(sim.truth["dropout_at"].to_numpy(), index=sim.truth[C.customer_id].astype("str"))
        observed, truth = run_campaign(tables, plan.exposures, CampaignEffects(), np.random.default_rng(seed),
                                       dropout)
        report = campaign_report(observed, "test", CONFIG)
        true = {"response_rate": (truth["purchased_if_contacted"] - truth["purchased_if_not"]).mean(),
                "revenue_per_customer": (truth["spend_if_contacted"] - truth["spend_if_not"]).mean()}
        for metric, value in true.items():
            effect = report["overall"][metric]
            covered[metric] += effect["ci_low"] <= value <= effect["ci_high"]
        assert report["causal"] and report["overall"]["treated"] + report["overall"]["control"] == 1200
    assert covered["response_rate"] >= 3 and covered["revenue_per_customer"] >= 3, covered


def test_plan_contacts_only_consenting_customers_and_holds_out_every_stratum(planned):
    sim, tables, _, frame, plan = planned
    consent = tables["customers"].set_index(C.customer_id)[C.consent_marketing]
    assert consent.reindex(plan.exposures[C.customer_id]).fillna(False).all()
    assert (frame[C.customer_id].map(consent).fillna(False) == False).any()  # noqa: E712 (some were left out)
    assert plan.funnel["target"] < plan.funnel["candidates"]
    assert plan.funnel["consented_to_marketing"] < plan.funnel["target"]
    shares = plan.exposures.groupby("segment")[C.group].apply(lambda g: (g == "control").mean())
    sizes = plan.exposures.groupby("segment").size()
    assert ((shares - 0.5).abs() <= 0.5 / sizes + 1e-9).all()  # exact up to rounding, in every stratum
    assert set(plan.contacts[C.customer_id]) == set(plan.exposures.loc[plan.exposures[C.group] == "treatment",
                                                                       C.customer_id])
    # Ranked by expected incremental value, highest first, within the target.
    chosen = frame.set_index(C.customer_id).loc[plan.exposures[C.customer_id]]
    assert (chosen["recency_days"] > 14).all()
    assert chosen["expected_incremental_value"].is_monotonic_decreasing


def test_erased_and_recently_contacted_customers_are_left_out(planned):
    sim, tables, sent, frame, plan = planned
    first, second = plan.exposures[C.customer_id].iloc[:2]
    erasures = ErasureList(frozenset({pseudonymise(first, "k")}), "k")
    recent = pd.DataFrame({C.customer_id: [second, second], C.campaign_id: ["a", "b"],
                           C.sent_at: [sent - pd.Timedelta(days=3), sent - pd.Timedelta(days=9)],
                           C.group: "treatment", C.offer: "x", C.channel: "email", C.cost: 0.0})
    capped = {**tables, "campaigns": pd.concat([tables["campaigns"], recent], ignore_index=True)}
    again = plan_campaign(frame, capped, "test", sent, 1200, 0.5, 11, CONFIG, target="recency_days > 14",
                          erasures=erasures)
    ids = set(again.exposures[C.customer_id])
    assert first not in ids and second not in ids
    assert again.funnel["not_erased"] == plan.funnel["not_erased"] - 1
    assert again.funnel["under_contact_cap"] == again.funnel["not_erased"] - 1


def test_a_campaign_without_control_gets_no_causal_figures(planned):
    _, tables, _, _, plan = planned
    everyone = plan.exposures.assign(group="treatment")
    report = campaign_report({**tables, "campaigns": everyone}, "test", CONFIG)
    assert report["causal"] is False and "overall" not in report
    reason = render(report["reason"])
    assert code_of(report["reason"]) == "campaign.no_control" and "no control group" in reason and "--holdout" in reason
    assert "没有对照组" in render(report["reason"], "zh-CN")


def test_plan_and_report_commands(tmp_path, monkeypatch):
    write_tables(simulate("beauty", 1500, 5).tables, tmp_path / "data")
    env_dir = tmp_path / "home"  # the commands' working directory: their data folder (keys, rejects) goes there
    env_dir.mkdir()
    plan = clientele("campaign", "plan", "--data", tmp_path / "data", "--size", "300", "--holdout", "0.2", "--seed",
                     "1", "--out", tmp_path / "out" / "plan.csv", "--target", "recency_days > 30",
                     "--campaign-id", "spring", "--cost", "0.5", cwd=env_dir)
    assert plan.returncode == 0, plan.stderr
    exposures = pd.read_csv(tmp_path / "out" / "plan.exposures.csv")
    assert len(exposures) == 300 and (exposures["group"] == "control").sum() == pytest.approx(60, abs=5)
    assert len(pd.read_csv(tmp_path / "out" / "plan.csv")) == (exposures["group"] == "treatment").sum()
    report = clientele("campaign", "report", "--data", tmp_path / "data", "--campaign", "winback-1", "--json",
                       "--plots", tmp_path / "plots", cwd=env_dir)
    assert report.returncode == 0, report.stderr
    body = json.loads(report.stdout)
    assert body["causal"] and set(body["overall"]) >= {"response_rate", "revenue_per_customer", "roi",
                                                      "incremental_revenue"}
    assert body["overall"]["roi"]["ci_low"] <= body["overall"]["roi"]["value"] <= body["overall"]["roi"]["ci_high"]
    bad = clientele("campaign", "plan", "--data", tmp_path / "data", "--size", "10", "--out", tmp_path / "x.csv",
                    "--by", "loyalty", cwd=env_dir)
    assert bad.returncode == 2 and "--by: no column 'loyalty'" in bad.stderr
    missing = clientele("campaign", "report", "--data", tmp_path / "data", "--campaign", "nope", cwd=env_dir)
    assert missing.returncode == 2 and "no campaign 'nope'" in missing.stderr
    monkeypatch.setenv("COLUMNS", "200")  # the console's tables wrap at its width
    for lang, words in (("en", ("contacted", "response rate", "incremental revenue", "ROI after cost")),
                        ("zh-CN", ("触达", "响应率", "增量收入", "投资回报率"))):
        printed = clientele("campaign", "report", "--data", tmp_path / "data", "--campaign", "winback-1", "--lang",
                            lang, cwd=env_dir)
        assert printed.returncode == 0, printed.stderr
        assert all(w in printed.stdout for w in words), printed.stdout
        assert (lang == "en") == ("response rate" in printed.stdout)


def test_campaigns_too_small_to_learn_from_are_not_ranked_by():
    """800 customers' campaigns (a few hundred exposures) cannot tell customers apart: the plan says so and ranks
    by value at risk or recency instead, and refuses to rank by the constant when asked to."""
    from features.exceptions import ConfigError

    tables = simulate("beauty", 800, 3).tables
    sent = (data_end(tables) - pd.Timedelta(days=20)).normalize()
    frame = candidates(tables, sent, CONFIG)
    assert (frame["uplift_basis"] == "campaign_average").all() and frame["uplift"].nunique() == 1
    plan = plan_campaign(frame, tables, "small", sent, 100, 0.2, 0, CONFIG)
    assert plan.notes and "too small" in plan.notes[0]
    chosen = frame.set_index(C.customer_id).loc[plan.exposures[C.customer_id]]
    assert chosen["recency_days"].is_monotonic_decreasing
    with pytest.raises(ConfigError, match="ranks no one"):
        plan_campaign(frame, tables, "small", sent, 100, 0.2, 0, CONFIG, rank_by="expected_incremental_value")


def test_campaigns_without_a_control_group_plan_by_value_at_risk():
    """Past campaigns that held nobody out teach no uplift: the plan says why and ranks by value at risk (or
    recency), instead of stopping."""
    tables = dict(simulate("beauty", 800, 3).tables)
    tables["campaigns"] = tables["campaigns"].assign(**{C.group: "treatment"})
    sent = (data_end(tables) - pd.Timedelta(days=20)).normalize()
    frame = candidates(tables, sent, CONFIG)
    assert "uplift" not in frame.columns
    plan = plan_campaign(frame, tables, "no-control", sent, 100, 0.2, 0, CONFIG)
    assert len(plan.notes) == 1 and "no uplift model" in plan.notes[0] and "control" in plan.notes[0]
    chosen = frame.set_index(C.customer_id).loc[plan.exposures[C.customer_id]]
    rank = "value_at_risk" if "value_at_risk" in frame.columns else "recency_days"
    assert chosen[rank].is_monotonic_decreasing and len(plan.exposures) == 100
