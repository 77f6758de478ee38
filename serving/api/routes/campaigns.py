"""Campaign reports for the CRM: measured lift with confidence intervals, per campaign and segment.

The reports are the ones `clientele campaign report --json` prints (:func:`training.campaigns.campaign_reports`
calls the same function), measured by training on the data it saw and carried by the uplift model version
(``campaigns.json`` of its serving folder, :mod:`training.layout`): the server holds no transactions of its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from serving.api.deps import ModelsDep, ScoresKey
from serving.api.language import LocaleDep
from serving.api.responses import AUTH_RESPONSES, MODEL_RESPONSES, OrjsonResponse, problem
from serving.schemas import CUSTOMER_ID_PATTERN, CampaignList, CampaignReport
from serving.snapshot import Snapshot
from training.campaigns import localise_report

router = APIRouter(tags=["campaigns"], responses={**AUTH_RESPONSES, **MODEL_RESPONSES})

CampaignPath = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN, description="Campaign id, as in the campaigns "
                                                                            "table.")]


def _campaigns(snap: Snapshot) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """The uplift model's label, its campaign reports, and why there are none (None when there are). The uplift
    model is optional, so having none is a steady state, not an outage: an empty list, and 404 for a report."""
    part = snap.uplift
    if part is None:
        return None, None, ("no uplift model is registered: campaign reports are measured when training registers "
                            "one (the data needs past campaigns with a control group); `clientele campaign report` "
                            "measures any campaign from the data")
    if part.campaigns is None:
        return snap.label("uplift"), None, (f"{snap.label('uplift')} was trained before campaign reports were kept: "
                                            f"retrain (`clientele train`) to serve them")
    return snap.label("uplift"), part.campaigns, None


@router.get("/v1/campaigns", response_model=CampaignList)
async def list_campaigns(key: ScoresKey, snap: ModelsDep, locale: LocaleDep) -> OrjsonResponse:
    """Every campaign in the data, newest first: sizes, offers, and the overall lift where it can be measured."""
    label, campaigns, missing = _campaigns(snap)
    if campaigns is None:
        return OrjsonResponse({"model_version": label, "data_end": None, "campaigns": [], "note": missing})
    return OrjsonResponse({"model_version": label, "data_end": campaigns.get("data_end"),
                           "campaigns": [localise_report(c, locale) for c in campaigns["campaigns"]]})


@router.get("/v1/campaigns/{campaign_id}/report", response_model=CampaignReport,
            responses={404: problem("No campaign of that id was in the data the reports were measured on, or no "
                                    "reports are served (no uplift model).")})
async def campaign_report(campaign_id: CampaignPath, key: ScoresKey, snap: ModelsDep, locale: LocaleDep
                          ) -> OrjsonResponse:
    """Treated vs control: response, orders, revenue per customer, retention, incremental revenue and ROI, each with
    a confidence interval, overall and per segment; without a control group, why no causal figure is given."""
    label, campaigns, missing = _campaigns(snap)
    if campaigns is None:
        raise HTTPException(404, f"no report of campaign {campaign_id!r}: {missing}")
    report = campaigns["reports"].get(campaign_id)
    if report is None:
        raise HTTPException(404, f"campaign {campaign_id!r} is not among the {len(campaigns['reports'])} campaigns "
                                 f"measured in {label} (data up to {campaigns.get('data_end')})")
    return OrjsonResponse({"model_version": label, **localise_report(report, locale)})
