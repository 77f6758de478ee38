"""Campaign reports over the API: the figures `clientele campaign report` measures, carried by the uplift model
version; a campaign without a control group says why no lift is given."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.columns import Columns as C
from features.settings import CHURN, CLV, UPLIFT
from features.synthetic import simulate
from models.uplift.config import UpliftConfig
from tests.serving.helpers import layout_tables, register, settings_for, write_layouts
from tests.serving.test_uplift_scores import uplift_table
from training.campaigns import localise_report, campaign_report, campaign_reports
from training.layout import write_campaign_reports


@pytest.fixture(scope="module")
def measured():
    tables = simulate("beauty", 800, 4).tables
    campaigns = tables["campaigns"]
    # Segments as `clientele campaign plan` writes them (the generator's campaigns have none).
    campaigns = campaigns.assign(segment=np.where(np.arange(len(campaigns)) % 3 == 0, "lapsed", "active"))
    everyone = campaigns[campaigns[C.campaign_id] == "winback-2"].assign(campaign_id="newsletter",
                                                                         group="treatment")
    tables = {**tables, "campaigns": pd.concat([campaigns, everyone], ignore_index=True)}
    return tables, campaign_reports(tables, UpliftConfig())


@pytest.fixture(scope="module")
def with_reports(registry, measured):
    _, reports = measured
    settings = settings_for(registry.root, model_prefix="campaigned")
    tables = layout_tables(tag="v1")
    tables.pop("recommender")
    tables[UPLIFT] = {"scores": uplift_table()}
    folders = write_layouts(registry.root / "layouts-campaigns", tables, installation=settings)
    write_campaign_reports(folders[UPLIFT], reports)  # as training's export writes them beside the scores
    for kind, folder in folders.items():
        register(settings, kind, folder)
    return dict(model_prefix="campaigned", required_models=[CHURN, CLV])


def test_reports_are_the_ones_the_cli_prints(make_served, with_reports, measured):
    tables, _ = measured
    served = make_served("campaigns", **with_reports)
    listing = served.get("/v1/campaigns", key="crm")
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert body["model_version"] == "uplift:1"
    assert [c["campaign_id"] for c in body["campaigns"]] == ["winback-2", "newsletter", "winback-1"]  # same send: by id
    report = served.get("/v1/campaigns/winback-1/report", key="crm")
    assert report.status_code == 200, report.text
    # What `clientele campaign report --json` prints (json.dumps(report, default=str)), figure for figure.
    expected = json.loads(json.dumps(localise_report(campaign_report(tables, "winback-1", UpliftConfig())),
                                     default=str))
    assert report.json() == {"model_version": "uplift:1", **expected}
    overall = report.json()["overall"]["response_rate"]
    assert overall["ci_low"] < overall["difference"] < overall["ci_high"]
    assert set(report.json()["segments"]) == {"active", "lapsed"}
    first = body["campaigns"][-1]
    assert first["response_rate_lift"] == overall and first["causal"] is True


def test_a_campaign_without_control_says_why_no_lift_is_given(make_served, with_reports):
    served = make_served("campaigns", **with_reports)
    body = served.get("/v1/campaigns/newsletter/report", key="crm").json()
    assert body["causal"] is False and "overall" not in body
    assert "no control group" in body["reason"] and "--holdout" in body["reason"]
    assert body["observed"]["response_rate"] >= 0
    listed = {c["campaign_id"]: c for c in served.get("/v1/campaigns", key="crm").json()["campaigns"]}
    assert listed["newsletter"]["causal"] is False and listed["newsletter"]["reason"] == body["reason"]
    assert "response_rate_lift" not in listed["newsletter"]
    zh = served.get("/v1/campaigns/newsletter/report", key="crm", headers={"Accept-Language": "zh-CN"}).json()
    assert zh["reason_code"] == body["reason_code"] == "campaign.no_control" and "没有对照组" in zh["reason"]
    assert zh["observed"] == body["observed"]


def test_unknown_campaign_scope_and_no_uplift_model(make_served, with_reports, served):
    reports = make_served("campaigns", **with_reports)
    missing = reports.get("/v1/campaigns/spring-sale/report", key="crm")
    assert missing.status_code == 404 and "spring-sale" in missing.json()["detail"]
    assert reports.get("/v1/campaigns", key="storefront").status_code == 403
    assert reports.get("/v1/campaigns", key=None).status_code == 401
    assert reports.get("/v1/campaigns/" + "x" * 300 + "/report", key="crm").status_code == 422
    none = served.get("/v1/campaigns", key="crm")  # the shared registry has no uplift model: none listed, and why
    assert none.status_code == 200 and none.json()["campaigns"] == [] and "no uplift model" in none.json()["note"]
    absent = served.get("/v1/campaigns/winback-1/report", key="crm")
    assert absent.status_code == 404 and "no uplift model" in absent.json()["detail"]
