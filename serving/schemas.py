"""Request and response schemas of the API (they are the OpenAPI document clients generate code from)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from features.validation import ID_PATTERN as CONTRACT_ID_PATTERN
from features.validation import ID_RULE as CONTRACT_ID_RULE

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
ID_RULE = "1 to 64 characters: letters, digits, '_', '.', ':' or '-'"
# Customer ids: every id the data contract keeps (unicode, '@', '/', up to its length limit), so every customer
# trained on can be asked for and erased; in a path, percent-encoded ('/' as %2F).
CUSTOMER_ID_PATTERN = CONTRACT_ID_PATTERN
CUSTOMER_ID_RULE = CONTRACT_ID_RULE
MAX_N = 100
MAX_BATCH = 1000
MAX_CATEGORIES = 20
BUY_AGAIN_SHARE_TEXT = ("Share of the list for products the customer bought before (buy again), the rest new to "
                        "them (explore), 0 to 1 (default: the model's setting; none: the model's own mix).")
CHANNEL_TEXT = ("The channel asking: store, online or app. Products its customers buy more through this channel "
                "than through the others rank higher (learned from the history); none: no channel preference.")
STORE_ID_TEXT = ("The store whose shelf counts (the inventory table the model was trained with; for a store it does "
                 "not list, or without one, the catalogue's in_stock). See availability.")
AVAILABILITY_TEXT = ("With store_id: in_store keeps only what the store has in stock; order_online keeps the rest too, "
                     "each with the reason code rec.order_online (\"not in this store: order online\").")
NEW_ONLY_TEXT = ("Only new arrivals (launched within the model's new-arrival window, or never sold and undated): "
                 "\"new arrivals for you\", ranked for the customer, topped up with the newest arrivals overall.")

# The pattern bounds the length too, and its message says the whole rule.
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
ProductId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=100)]
StoreId = Annotated[str, StringConstraints(pattern=CONTRACT_ID_PATTERN)]
Strategy = Literal["personal", "cold_start", "non_personal"]
Channel = Literal["store", "online", "app"]
Availability = Literal["in_store", "order_online"]
EventType = Literal["view", "cart", "wishlist", "try_on", "purchase"]


class Strict(BaseModel):
    """Request bodies reject fields they do not know: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------------- requests

class BatchRecommendationsRequest(Strict):
    customer_ids: list[CustomerId] = Field(min_length=1, max_length=MAX_BATCH,
                                           description=f"Up to {MAX_BATCH} customer ids ({CUSTOMER_ID_RULE}).")
    n: int = Field(10, ge=1, le=MAX_N, strict=True, description="Items per customer.")
    exclude_bought: bool | None = Field(None, strict=True, description="Leave out products bought before "
                                                                       "(default: the model's setting).")
    category: list[Category] = Field(default_factory=list, max_length=MAX_CATEGORIES,
                                     description="Only these categories.")
    exclude_category: list[Category] = Field(default_factory=list, max_length=MAX_CATEGORIES,
                                             description="Not these categories.")
    in_stock_only: bool = Field(True, strict=True)
    price_min: float | None = Field(None, ge=0, strict=True)
    price_max: float | None = Field(None, ge=0, strict=True)
    buy_again_share: float | None = Field(None, ge=0, le=1, strict=True, description=BUY_AGAIN_SHARE_TEXT)
    channel: Channel | None = Field(None, description=CHANNEL_TEXT)
    store_id: StoreId | None = Field(None, description=STORE_ID_TEXT)
    availability: Availability = Field("in_store", description=AVAILABILITY_TEXT)
    new_only: bool = Field(False, strict=True, description=NEW_ONLY_TEXT)


class EventRequest(Strict):
    customer_id: CustomerId
    product_id: ProductId
    event_type: EventType
    timestamp: datetime | None = Field(None, description="When it happened (default: when received); a time "
                                                         "without a zone is UTC.")
    channel: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")] | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        # JSON has no time type: a number here is a mistake (seconds? milliseconds?), not a time to guess.
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date and time, e.g. 2024-05-01T12:30:00Z")
        return value


# --------------------------------------------------------------------------------------------------- responses

class RecommendedItem(BaseModel):
    product_id: str
    score: float = Field(description="Relevance; never increases down the list.")
    reason: str = Field(description="Why this item, in words a shopper reads, in the language of "
                                    "Accept-Language.")
    reason_code: str | None = Field(None, description="The reason's stable code (rec.bought_together, rec.due_in, "
                                                      "...), the same in every language.")


class RecommendationsResponse(BaseModel):
    customer_id: str
    strategy: Strategy = Field(description="personal: the customer's own model results; cold_start: a customer "
                                           "without history (popular in their region, or items related to their "
                                           "first events); non_personal: no profiling consent, popular items.")
    model_version: str
    items: list[RecommendedItem]


class BatchRecommendationsResponse(BaseModel):
    model_version: str
    results: list[RecommendationsResponse]


class SimilarProductsResponse(BaseModel):
    product_id: str
    model_version: str
    items: list[RecommendedItem]


LABELS_DOC = ("Field -> readable name of its code in the language of Accept-Language (risk_band, rfm_segment, "
              "lifecycle_stage, value_tier, membership_tier); the coded fields themselves never change.")


class CustomerScores(BaseModel):
    customer_id: str
    model_versions: dict[str, str] = Field(description="kind -> kind:version of the models behind the scores.")
    churn_probability: float | None = None
    risk_band: str | None = None
    churn_reasons: list[str] | None = Field(None, description="Why the risk, in the language of Accept-Language.")
    churn_reason_codes: list[str | None] | None = Field(None, description="Each reason's stable code "
                                                                          "(churn.recency, ...).")
    labels: dict[str, str] = Field(default_factory=dict, description=LABELS_DOC)
    clv: float | None = None
    p_alive: float | None = None
    expected_purchases_12m: float | None = None
    expected_spend: float | None = None
    value_at_risk: float | None = Field(None, description="churn_probability x clv.")
    rfm_segment: str | None = None
    r_score: Any = None
    f_score: Any = None
    m_score: Any = None
    lifecycle_stage: str | None = None
    value_tier: str | None = None
    membership_tier: str | None = None
    uplift: float | None = Field(None, description="Change in the chance of buying that a contact brings (uplift "
                                                   "model).")
    incremental_spend: float | None = None
    expected_incremental_value: float | None = Field(None, description="uplift x value - contact cost.")
    best_offer: str | None = Field(None, description="The offer with the highest expected incremental value.")
    p_purchase_if_contacted: float | None = Field(None, description="Calibrated chance of buying in the response "
                                                                    "window if contacted with the best offer.")
    p_purchase_if_not: float | None = Field(None, description="Calibrated chance of buying in the response window "
                                                              "without a contact.")
    uplift_basis: Literal["customer", "campaign_average"] | None = Field(
        None, description="customer: the uplift is this customer's; campaign_average: the past campaigns were too "
                          "small to tell customers apart, everyone gets their average effect.")
    uplift_reasons: list[str] | None = Field(None, description="What moves this customer's uplift most, in its "
                                                               "direction.")
    consent_marketing: bool | None = Field(None, description="Whether the customer agreed to be contacted; null "
                                                             "when unknown (never contacted).")


class CustomerProfile(BaseModel):
    customer_id: str
    model_version: str
    profile: dict[str, Any] = Field(description="Profile columns as training exported them (first_purchase, "
                                                "orders, total_spend, ...); absent columns are left out.")


class ScoreRow(BaseModel):
    customer_id: str
    churn_probability: float | None
    risk_band: str | None
    clv: float | None
    value_at_risk: float | None
    p_alive: float | None
    rfm_segment: str | None
    lifecycle_stage: str | None
    value_tier: str | None
    churn_reasons: list[str] | None
    churn_reason_codes: list[str | None] | None = None
    labels: dict[str, str] = Field(default_factory=dict, description=LABELS_DOC)
    consent_marketing: bool | None = None
    uplift: float | None = None
    expected_incremental_value: float | None = None
    best_offer: str | None = None


class ScoresPage(BaseModel):
    model_versions: dict[str, str]
    total: int = Field(description="Customers matching the filters (consenting, scored, not erased).")
    items: list[ScoreRow]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class MomentRow(BaseModel):
    customer_id: str
    kind: Literal["replenishment", "birthday", "occasion", "tier_upgrade"]
    name: str | None = Field(description="The occasion (valentines, qixi, anniversary, ...), the next tier, or the "
                                         "product due.")
    date: str = Field(description="The day of the moment (ISO date); an overdue refill is dated at the cutoff.")
    confidence: float = Field(description="0-1: how sure the moment is (1 for a birthday on record).")
    description: str = Field(description="Why: the purchases or timing it was found from, in the language of "
                                         "Accept-Language.")
    description_code: str | None = Field(None, description="The description's stable code (moment.birthday, "
                                                           "moment.occasion_named, rec.due_in, ...).")
    products: list[str] = Field(description="Suggested products, best first.")
    reasons: list[str] = Field(description="The reason of each suggested product, in the language of "
                                           "Accept-Language.")
    clv: float | None
    value_tier: str | None
    rfm_segment: str | None
    consent_marketing: bool | None = Field(description="Marketing consent of record; null: unknown (never "
                                                       "contactable).")


class MomentsPage(BaseModel):
    model_versions: dict[str, str]
    total: int = Field(description="Moments matching the filters (customers who may be profiled, not erased).")
    items: list[MomentRow]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class EventAccepted(BaseModel):
    event_id: str
    status: Literal["accepted"] = "accepted"
    received_at: str


class ErasureResponse(BaseModel):
    customer_id: str
    erased: bool = True
    already_erased: bool
    detail: str


class ModelVersion(BaseModel):
    kind: str
    name: str
    version: str
    label: str
    run_id: str | None
    loaded_at: str
    cutoff: str | None
    created_at: str | None


class ModelsResponse(BaseModel):
    ready: bool
    models: list[ModelVersion]
    last_check_at: str | None
    last_error: str | None


class ReloadResponse(BaseModel):
    changed: bool
    models: list[ModelVersion]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    models: dict[str, str]
    missing: list[str]


class Problem(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    detail: str = Field(description="Every problem in one line: 'n: must be at most 100'.")
    errors: list[FieldError]


class CampaignSummary(BaseModel):
    campaign_id: str
    sent_at: str
    customers: int
    treated: int
    control: int
    offers: list[str]
    window_complete_share: float = Field(description="Share of the customers whose response window the data "
                                                     "covered when the report was measured.")
    causal: bool = Field(description="False when the campaign has no control (or no treated) group: no lift is "
                                     "given, and `reason` says why.")
    response_rate_lift: dict[str, float | None] | None = Field(None, description="Overall treated minus control "
                                                                                 "response rate with its interval.")
    incremental_revenue: dict[str, float | None] | None = None
    reason: str | None = Field(None, description="Why no causal figure is given, in the language of "
                                                 "Accept-Language.")
    reason_code: str | None = Field(None, description="The reason's stable code (campaign.no_control, ...).")


class CampaignList(BaseModel):
    model_version: str | None = Field(description="The uplift model version whose training measured the reports "
                                                  "(null: no uplift model is registered).")
    data_end: str | None = Field(description="Last transaction the reports saw.")
    campaigns: list[CampaignSummary] = Field(description="Newest send first.")
    note: str | None = Field(None, description="Why no campaign is listed, when none is served.")


class CampaignReport(BaseModel):
    """What `clientele campaign report --json` prints for the campaign, plus the model version."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model_version: str
    info: dict[str, Any] = Field(alias="_info", description="campaign_id, sent_at, customers, treated, control, "
                                                            "offers, response window, confidence, data_end.")
    causal: bool
    reason: str | None = Field(None, description="Why no causal figure is given (no control group), in the "
                                                 "language of Accept-Language.")
    reason_code: str | None = Field(None, description="The reason's stable code (campaign.no_control, ...).")
    observed: dict[str, float] | None = Field(None, description="Plain means of the contacted customers, when no "
                                                                "causal figure can be given.")
    note: str | None = Field(None, description="What limits the figures (windows not yet ended), in the language "
                                               "of Accept-Language.")
    note_codes: list[str | None] | None = None
    overall: dict[str, Any] | None = Field(None, description="Per metric (response_rate, orders_per_customer, "
                                                             "revenue_per_customer, retention_rate): treated, "
                                                             "control, difference, ci_low, ci_high, "
                                                             "relative_lift; incremental_revenue, cost, roi.")
    segments: dict[str, dict[str, Any]] | None = Field(None, description="The same figures per segment.")
