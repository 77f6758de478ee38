"""Campaigns: uplift scores for targeting, a plan with a stratified random holdout, and the measured report.

Targeting. The uplift models learn from the data's past campaigns (exposure rows with a control group): one of the
change in P(purchase within the response window), one of the change in spend within it (a hurdle: change in
P(buy) x basket). Expected incremental value = incremental spend - the offer's cost per contact; with several
offers in the history, the next best offer is the one of highest expected incremental value.

Planning picks customers by an expression over their features and scores (``--target``), ranks them (by expected
incremental value when the data has campaigns to learn from), keeps only customers who consented to marketing
(:func:`features.privacy.marketing_consent`), who are not erased, and who were not contacted ``max_contacts``
times in the last ``contact_window_days``, and holds out a random control group within every stratum.

Reporting compares treated and control customers of one campaign: response rate, orders, revenue per customer,
retention; differences with Welch confidence intervals; incremental revenue and ROI after the offer's cost. A
campaign without a control group gets no causal figure, and the report says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from features.campaigns import (COMPLETE, RETENTION_COMPLETE, campaign_features, campaign_outcomes, campaigns_table, treatment_flag)
from features.columns import Columns as C
from features.columns import Groups, Tables
from features.config import FeatureConfig
from features.exceptions import ConfigError, DataError
from features.expressions import Expression
from features.i18n import DEFAULT_LOCALE, code_of, message, render, text_of
from features.labels import data_end
from features.pipeline import feature_frame
from features.presets import load_preset
from features.privacy import ErasureList, marketing_consent
from models.uplift.config import UpliftConfig
from models.uplift.model import AVERAGE, UpliftModel
from training.export import profiling_allowed
from training.uplift_data import from_campaigns

SEGMENT = "segment"  # exposure rows may carry the segment the customer was planned in; reports break down by it
UPLIFT_COLUMNS = ("uplift", "incremental_spend", "expected_incremental_value", "best_offer", "p_purchase_if_contacted",
                  "p_purchase_if_not", "uplift_basis")
REASON_COLUMNS = ("uplift_reasons", "uplift_reason_codes")
NO_UPLIFT = "no_uplift"  # candidates' attrs: why no uplift model could be learned from the data's campaigns


def retention_days(preset: str) -> int:
    """The churn horizon of the preset: a retained customer bought within it after the send."""
    return int(load_preset(preset)["churn"]["horizon_days"])


@dataclass
class UpliftScorer:
    """Uplift models fitted on the data's past campaigns, and what they need to score customers."""

    purchase: UpliftModel
    spend: UpliftModel
    offers: list[str | None]
    costs: dict[str | None, float]
    feature_config: FeatureConfig

    @classmethod
    def fit(cls, tables: dict[str, pd.DataFrame], config: UpliftConfig, feature_config: FeatureConfig | None = None,
            preset: str = "beauty", random_state: int = 0) -> "UpliftScorer":
        """Fit on every exposure row whose response window the data covers.

        Raises
        ------
        DataError
            No campaigns table, no complete campaign, or no control group to learn from.
        """
        feature_config = feature_config or FeatureConfig()
        table = from_campaigns(tables, config, "campaigns", feature_config, preset)
        purchase = UpliftModel(config.model, random_state, probabilities=True).fit(
            table.features, table.treatment, table.outcomes["purchased"].to_numpy())
        spend = UpliftModel(config.model, random_state).fit(table.features, table.treatment,
                                                            table.outcomes["spend"].to_numpy())
        campaigns = campaigns_table(tables)
        if C.offer in table.features.columns:
            offers: list[str | None] = sorted(table.features[C.offer].dropna().astype("str").unique().tolist())
            costs = campaigns.groupby(C.offer)[C.cost].median().to_dict()
        else:
            offers = [None]
            costs = {None: float(campaigns[C.cost].median())}
        return cls(purchase=purchase, spend=spend, offers=offers, costs=costs, feature_config=feature_config)

    def score(self, tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, customer_ids: pd.Series) -> pd.DataFrame:
        """Per customer as of ``as_of``: ``customer_id``, :meth:`predict`'s columns and :meth:`reasons`'s."""
        ids = pd.Series(customer_ids).astype("str").reset_index(drop=True)
        rows = pd.DataFrame({C.customer_id: ids, C.sent_at: pd.Timestamp(as_of)})
        features = campaign_features(tables, rows, self.feature_config)
        scores = self.predict(features)
        reasons = self.reasons(features, scores["best_offer"].to_numpy(), scores["uplift"].to_numpy())
        return scores.assign(**{C.customer_id: ids.to_numpy()}, **reasons)[
            [C.customer_id, *UPLIFT_COLUMNS, *REASON_COLUMNS]]

    def basis(self) -> str:
        """``customer``, or ``campaign_average`` when the past campaigns were too small to tell customers apart
        (:meth:`models.uplift.model.UpliftModel.basis` of the purchase model)."""
        return self.purchase.basis()

    def note(self) -> str | None:
        """Why the uplift ranks no one (None when it does)."""
        return self.purchase.note()

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """From customer features as of the send (:func:`features.campaigns.campaign_features`): ``uplift`` (change
        in P(purchase) in the response window), ``incremental_spend``, ``expected_incremental_value`` (minus the
        offer's cost), ``best_offer``, the calibrated ``p_purchase_if_not`` and ``p_purchase_if_contacted`` (=
        without + uplift), all for the offer of highest expected incremental value, and ``uplift_basis``
        (:meth:`basis`)."""
        features = features.reset_index(drop=True)
        best: dict[str, np.ndarray] = {}
        for offer in self.offers:
            X = features if offer is None else features.assign(offer=offer)
            uplift = self.purchase.predict(X)
            spend = self.spend.predict(X)
            value = spend - float(self.costs.get(offer, 0.0))
            without, contacted = self.purchase.predict_arms(X, uplift)
            found = {"uplift": uplift, "incremental_spend": spend, "expected_incremental_value": value,
                     "p_purchase_if_contacted": contacted, "p_purchase_if_not": without}
            if not best:
                best = {**found, "best_offer": np.full(len(features), offer, dtype=object)}
                continue
            better = value > best["expected_incremental_value"]
            for key, new in found.items():
                best[key] = np.where(better, new, best[key])
            best["best_offer"] = np.where(better, offer, best["best_offer"])
        best["uplift_basis"] = np.full(len(features), self.basis(), dtype=object)
        return pd.DataFrame(best)[list(UPLIFT_COLUMNS)]

    def reasons(self, features: pd.DataFrame, offers: np.ndarray, uplift: np.ndarray | None = None
                ) -> dict[str, list[list[str]]]:
        """``uplift_reasons`` (texts) and ``uplift_reason_codes`` of each customer's uplift under the offer given
        for them (their best offer), as :meth:`models.uplift.model.UpliftModel.reasons` finds them; ``uplift``:
        :meth:`predict`'s of those offers, when the caller has it (not predicted again)."""
        features = features.reset_index(drop=True)
        found: list[list[dict[str, Any]]] = [[] for _ in range(len(features))]
        for offer in pd.unique(offers):
            rows = np.flatnonzero(offers == offer)
            X = features.iloc[rows] if offer is None else features.iloc[rows].assign(offer=offer)
            for row, reasons in zip(rows, self.purchase.reasons(X, None if uplift is None else uplift[rows])):
                found[row] = reasons
        return {"uplift_reasons": [[r["text"] for r in rs] for rs in found],
                "uplift_reason_codes": [[r["code"] for r in rs] for rs in found]}

    def save(self, path: str | Path) -> Path:
        """Write the fitted scorer (its models, offers, costs and feature settings) to one file."""
        import pickle

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "UpliftScorer":
        """Read a file written by :meth:`save` (a model artefact of this installation's own registry)."""
        import pickle

        return pickle.loads(Path(path).read_bytes())


@dataclass
class Plan:
    """The contact list (treatment rows), the exposure rows of both groups, and how many customers each rule
    left."""

    contacts: pd.DataFrame
    exposures: pd.DataFrame
    funnel: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def recently_contacted(tables: dict[str, pd.DataFrame], sent_at: pd.Timestamp, max_contacts: int,
                       window_days: int) -> set[str]:
    """Customers contacted (treatment rows) at least ``max_contacts`` times in the ``window_days`` before
    ``sent_at``: the contact-frequency cap."""
    campaigns = tables.get(Tables.campaigns)
    if campaigns is None or campaigns.empty:
        return set()
    recent = campaigns[(campaigns[C.group] == Groups.treatment) & (campaigns[C.sent_at] < sent_at)
                       & (campaigns[C.sent_at] >= sent_at - pd.Timedelta(days=window_days))]
    counts = recent[C.customer_id].value_counts()
    return set(counts[counts >= max_contacts].index.astype("str"))


def candidates(tables: dict[str, pd.DataFrame], sent_at: pd.Timestamp, config: UpliftConfig,
               scores: pd.DataFrame | None = None, feature_config: FeatureConfig | None = None,
               preset: str = "beauty") -> pd.DataFrame:
    """Every customer who may be profiled, with their features as of ``sent_at``, the given scores (e.g. churn
    risk from `clientele score`) and, when the data has campaigns to learn from, uplift scores."""
    feature_config = feature_config or FeatureConfig()
    frame = profiling_allowed(feature_frame(tables, sent_at, None, feature_config))
    if scores is not None:
        scores = scores.assign(**{C.customer_id: scores[C.customer_id].astype("str")})
        extra = [c for c in scores.columns if c == C.customer_id or c not in frame.columns]
        frame = frame.merge(scores[extra], on=C.customer_id, how="inner")
    if tables.get(Tables.campaigns) is not None:
        try:
            scorer = UpliftScorer.fit(tables, config, feature_config, preset)
        except DataError as error:  # nothing to learn from (no control group, no complete campaign): plan without
            frame.attrs[NO_UPLIFT] = str(error)
            return frame
        frame = frame.merge(scorer.score(tables, sent_at, frame[C.customer_id]), on=C.customer_id, how="left")
    return frame


def plan_campaign(frame: pd.DataFrame, tables: dict[str, pd.DataFrame], campaign_id: str, sent_at: pd.Timestamp,
                  size: int, holdout: float, seed: int, config: UpliftConfig, target: str | None = None,
                  rank_by: str | None = None, offer: str | None = None, channel: str = "email", cost: float = 0.0,
                  segment_by: str | None = None, erasures: ErasureList | None = None) -> Plan:
    """Choose ``size`` customers and hold out a random ``holdout`` share of them within every stratum.

    Parameters
    ----------
    frame
        Candidates with their features and scores (:func:`candidates`).
    target
        An expression over ``frame``'s columns (``risk_band == 'high' and value_tier != 'low'``); None: everyone.
    rank_by
        Column ranking the candidates, highest first (default ``expected_incremental_value`` when present, else
        ``value_at_risk``, else ``recency_days``).
    offer
        The offer sent; None: each customer's ``best_offer`` when the frame has one.
    segment_by
        Column naming each customer's stratum, written to the exposure rows as ``segment`` (default
        ``risk_band``, else ``lifecycle_stage``, else the rank's deciles).

    Raises
    ------
    ConfigError
        An unknown column in the target, rank or segment, or a holdout outside [0, 1).
    DataError
        No customer is left to contact.
    """
    if not 0 <= holdout < 1:
        raise ConfigError(f"--holdout: must be at least 0 and below 1, not {holdout}")
    funnel = {"candidates": len(frame)}
    notes = []
    if frame.attrs.get(NO_UPLIFT):
        notes.append(f"no uplift model ({frame.attrs[NO_UPLIFT]}): ranked by value at risk (or recency) instead of "
                     "expected incremental value")
    if target:
        keep = Expression(target, "--target").evaluate(frame)
        keep = keep if isinstance(keep, pd.Series) else pd.Series(bool(keep), index=frame.index)
        frame = frame[keep.fillna(False).astype(bool).to_numpy()]
        funnel["target"] = len(frame)
    frame = frame[marketing_consent(frame[C.customer_id], tables.get(Tables.customers))]
    funnel["consented_to_marketing"] = len(frame)
    if erasures:
        frame = erasures.drop(frame)
    funnel["not_erased"] = len(frame)
    capped = recently_contacted(tables, sent_at, config.campaigns.max_contacts, config.campaigns.contact_window_days)
    frame = frame[~frame[C.customer_id].astype("str").isin(capped)]
    funnel["under_contact_cap"] = len(frame)
    if frame.empty:
        raise DataError(f"campaign {campaign_id}: no customer is left to contact ({funnel})")
    # An uplift learned for everyone alike (too few past campaign customers) ranks no one: never rank by it.
    flat = "uplift_basis" in frame.columns and bool((frame["uplift_basis"] == AVERAGE).all())
    if flat and rank_by == "expected_incremental_value":
        raise ConfigError("--by expected_incremental_value: the uplift model learned one average effect for "
                          "everyone (too few customers in the past campaigns), so it ranks no one; rank by "
                          "value_at_risk or recency_days")
    if flat and rank_by is None:
        notes.append("the past campaigns are too small for the uplift model to tell customers apart: ranked by "
                     "value at risk (or recency) instead of expected incremental value")
    rank_by = rank_by or next((c for c in ("expected_incremental_value", "value_at_risk", "recency_days")
                               if c in frame.columns and not (flat and c == "expected_incremental_value")), None)
    if rank_by not in frame.columns:
        raise ConfigError(f"--by: no column '{rank_by}' to rank customers by (columns: "
                          f"{', '.join(map(str, frame.columns[:30]))})")
    frame = frame.sort_values([rank_by, C.customer_id], ascending=[False, True], kind="stable").head(size)
    frame = frame.reset_index(drop=True)
    funnel["chosen"] = len(frame)
    segment_by = segment_by or next((c for c in ("risk_band", "lifecycle_stage") if c in frame.columns), None)
    if segment_by is not None and segment_by not in frame.columns:
        raise ConfigError(f"--segment-by: no column '{segment_by}'")
    segment = (frame[segment_by].astype("str").to_numpy() if segment_by else
               np.asarray([f"rank decile {d + 1:02d}" for d in (np.arange(len(frame)) * 10 // len(frame))]))
    group = _stratified_holdout(segment, holdout, np.random.default_rng(seed))
    offers = (frame["best_offer"].astype("str").to_numpy() if offer is None and "best_offer" in frame.columns
              else np.full(len(frame), offer, dtype=object))
    exposures = pd.DataFrame({
        C.customer_id: frame[C.customer_id].astype("str").to_numpy(), C.campaign_id: campaign_id,
        C.sent_at: np.full(len(frame), np.datetime64(pd.Timestamp(sent_at), "ns")), C.group: group,
        C.offer: offers, C.channel: channel, C.cost: np.where(group == Groups.treatment, float(cost), 0.0),
        C.response_window_days: float(config.campaigns.response_window_days), SEGMENT: segment,
    })
    shown = [c for c in (rank_by, "uplift", "expected_incremental_value", "churn_probability", "risk_band",
                         "value_at_risk") if c in frame.columns]
    contacts = exposures.loc[exposures[C.group] == Groups.treatment,
                             [C.customer_id, C.campaign_id, C.offer, C.channel, SEGMENT]].join(
        frame[list(dict.fromkeys(shown))]).reset_index(drop=True)
    return Plan(contacts=contacts, exposures=exposures, funnel=funnel, notes=notes)


def _stratified_holdout(strata: np.ndarray, holdout: float, rng: np.random.Generator) -> np.ndarray:
    """``control`` for a random ``holdout`` share of every stratum (rounded), ``treatment`` for the rest."""
    group = np.full(len(strata), Groups.treatment, dtype=object)
    for value in pd.unique(strata):
        rows = np.flatnonzero(strata == value)
        n_control = int(round(holdout * len(rows)))
        group[rng.permutation(rows)[:n_control]] = Groups.control
    return group


def _effect(treated: np.ndarray, control: np.ndarray, level: float) -> dict[str, float | None]:
    """Means of both groups, their difference and its Welch confidence interval."""
    m1, m0 = float(treated.mean()), float(control.mean())
    v1 = treated.var(ddof=1) / len(treated) if len(treated) > 1 else np.nan
    v0 = control.var(ddof=1) / len(control) if len(control) > 1 else np.nan
    se = float(np.sqrt(v1 + v0))
    if not np.isfinite(se):
        low = high = None
    else:
        denom = (v1 ** 2 / (len(treated) - 1) + v0 ** 2 / (len(control) - 1))
        df = (v1 + v0) ** 2 / denom if denom > 0 else np.inf
        q = float(stats.t.ppf(0.5 + level / 2, df)) if np.isfinite(df) else float(stats.norm.ppf(0.5 + level / 2))
        low, high = m1 - m0 - q * se, m1 - m0 + q * se
    return {"treated": m1, "control": m0, "difference": m1 - m0, "ci_low": low, "ci_high": high,
            "relative_lift": (m1 - m0) / m0 if m0 else None}


METRICS = {"response_rate": "purchased", "orders_per_customer": "orders", "revenue_per_customer": "spend",
           "retention_rate": "retained"}


def _group_report(rows: pd.DataFrame, level: float) -> dict[str, Any]:
    t = treatment_flag(rows) == 1
    out: dict[str, Any] = {"treated": int(t.sum()), "control": int((~t).sum())}
    for name, col in METRICS.items():
        values = rows[col].to_numpy(dtype=float)
        out[name] = _effect(values[t], values[~t], level)
    revenue = out["revenue_per_customer"]
    cost = float(rows.loc[t, C.cost].sum()) if C.cost in rows.columns else 0.0
    scale = int(t.sum())  # incremental revenue of the contacted customers: their number x the per-customer lift

    def scaled(v: float | None) -> float | None:
        return None if v is None else v * scale

    incremental = {"value": scaled(revenue["difference"]), "ci_low": scaled(revenue["ci_low"]),
                   "ci_high": scaled(revenue["ci_high"])}
    out["incremental_revenue"] = incremental
    out["cost"] = cost
    out["roi"] = ({k: (None if v is None else (v - cost) / cost) for k, v in incremental.items()} if cost > 0
                  else None)
    return out


def campaign_report(tables: dict[str, pd.DataFrame], campaign_id: str, config: UpliftConfig,
                    preset: str = "beauty") -> dict[str, Any]:
    """Treated vs control outcomes of one campaign, overall and per segment, with confidence intervals.

    Raises
    ------
    DataError
        No campaigns table, or no such campaign.
    """
    rows = campaigns_table(tables, campaign_id)
    rows = campaign_outcomes(tables, rows, config.campaigns.response_window_days, retention_days(preset))
    level = config.campaigns.confidence
    t = treatment_flag(rows) == 1
    info = {"campaign_id": str(campaign_id), "sent_at": str(rows[C.sent_at].min()),
            "customers": len(rows), "treated": int(t.sum()), "control": int((~t).sum()),
            "offers": sorted(rows[C.offer].dropna().astype("str").unique().tolist()) if C.offer in rows else [],
            "response_window_days": sorted(set(
                rows[C.response_window_days].fillna(config.campaigns.response_window_days).astype(int).tolist()))
            if C.response_window_days in rows else [config.campaigns.response_window_days],
            "window_complete_share": float(rows[COMPLETE].mean()),
            "retention_complete_share": float(rows[RETENTION_COMPLETE].mean()), "confidence": level,
            "data_end": str(data_end(tables))}
    report: dict[str, Any] = {"_info": info}
    if t.all() or not t.any():
        missing = "control" if t.all() else "treated"
        report["causal"] = False
        report["reason"] = message(f"campaign.no_{missing}", campaign=str(campaign_id))
        values = rows.loc[t] if t.any() else rows
        report["observed"] = {name: float(values[col].mean()) for name, col in METRICS.items()}
        return report
    report["causal"] = True
    notes = []  # messages (features.i18n): localise_report words them for the reader
    if info["window_complete_share"] < 1:
        notes.append(message("campaign.window_open", percent=round(1 - info["window_complete_share"], 2)))
    if info["retention_complete_share"] < 1:
        notes.append(message("campaign.retention_open", days=retention_days(preset),
                             percent=round(1 - info["retention_complete_share"], 2)))
    if notes:
        report["note"] = notes
    report["overall"] = _group_report(rows, level)
    if SEGMENT in rows.columns:
        report["segments"] = {}
        for value, part in rows.groupby(rows[SEGMENT].astype("str"), sort=True):
            part_t = treatment_flag(part) == 1
            if part_t.sum() >= 2 and (~part_t).sum() >= 2:
                report["segments"][value] = _group_report(part, level)
    return report


def localise_report(report: dict[str, Any], locale: str = DEFAULT_LOCALE) -> dict[str, Any]:
    """A report (or a summary of one) for a reader of ``locale``: its ``reason`` and ``note`` (messages) worded,
    the codes kept beside them (``reason_code``, ``note_codes``). Reports are stored with messages, so one
    measured report serves every language."""
    out = dict(report)
    if "reason" in out:
        out["reason_code"] = code_of(out["reason"])
        out["reason"] = render(out["reason"], locale)
    if "note" in out:
        notes = [out["note"]] if isinstance(out["note"], str) else list(out["note"] or [])
        out["note_codes"] = [code_of(n) for n in notes]
        out["note"] = "; ".join(render(n, locale) for n in notes) or None
    return out


def campaign_reports(tables: dict[str, pd.DataFrame], config: UpliftConfig, preset: str = "beauty"
                     ) -> dict[str, Any]:
    """:func:`campaign_report` of every campaign in the data, and a one-line summary of each: what training writes
    beside the uplift model for the API (``GET /v1/campaigns``, ``GET /v1/campaigns/{id}/report``).

    Returns
    -------
    dict
        ``data_end``, ``campaigns`` (per campaign, newest send first: ``campaign_id``, ``sent_at``, ``customers``,
        ``treated``, ``control``, ``offers``, ``causal`` and, when causal, the overall response-rate lift and
        incremental revenue with their intervals) and ``reports`` (campaign id -> report).

    Raises
    ------
    DataError
        The data has no campaigns table.
    """
    ids = campaigns_table(tables)[C.campaign_id].astype("str").unique().tolist()
    reports = {campaign_id: campaign_report(tables, campaign_id, config, preset) for campaign_id in ids}
    summaries = []
    for campaign_id, report in reports.items():
        info = report["_info"]
        summary = {key: info[key] for key in ("campaign_id", "sent_at", "customers", "treated", "control", "offers",
                                              "window_complete_share")}
        summary["causal"] = report["causal"]
        if report["causal"]:
            summary["response_rate_lift"] = report["overall"]["response_rate"]
            summary["incremental_revenue"] = report["overall"]["incremental_revenue"]
        else:
            summary["reason"] = report["reason"]
        summaries.append(summary)
    summaries.sort(key=lambda s: (s["sent_at"], s["campaign_id"]), reverse=True)
    return {"data_end": str(data_end(tables)), "campaigns": summaries, "reports": reports}


def write_report_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Lift with its confidence interval per segment (response rate and revenue per customer), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not report.get("causal"):
        return []
    parts = {"all customers": report["overall"], **report.get("segments", {})}
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.6 * len(parts) + 2.2))
    for ax, (metric, label) in zip(axes, (("response_rate", "response rate lift (points)"),
                                          ("revenue_per_customer", "revenue per customer lift"))):
        names = list(parts)[::-1]
        scale = 100 if metric == "response_rate" else 1
        diffs = np.array([parts[n][metric]["difference"] for n in names]) * scale
        lows = np.array([parts[n][metric]["ci_low"] if parts[n][metric]["ci_low"] is not None else np.nan
                         for n in names]) * scale
        highs = np.array([parts[n][metric]["ci_high"] if parts[n][metric]["ci_high"] is not None else np.nan
                          for n in names]) * scale
        ax.errorbar(diffs, range(len(names)), xerr=[diffs - lows, highs - diffs], fmt="o", capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(names)), names)
        ax.set(xlabel=label)
    fig.suptitle(f"Campaign {report['_info']['campaign_id']}: treated vs control, "
                 f"{int(100 * report['_info']['confidence'])}% intervals")
    fig.tight_layout()
    path = out_dir / f"campaign_{report['_info']['campaign_id']}_lift.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def read_table(path: str | Path) -> pd.DataFrame:
    """A table of customer scores (Parquet or CSV, as `clientele score` writes them), ids as text.

    Raises
    ------
    DataError
        The file cannot be read or has no ``customer_id`` column.
    """
    path = Path(path)
    try:
        frame = (pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
                 else pd.read_csv(path, dtype={C.customer_id: "str"}))
    except Exception as exc:  # any reader failure is one line naming the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read ({first})") from None
    if C.customer_id not in frame.columns:
        raise DataError(f"{path}: column 'customer_id' is missing")
    return frame


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Parquet for a .parquet name, else CSV with text a spreadsheet would run as a formula neutralised."""
    from features.csvsafe import write_csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        write_csv(frame, path)
    return path


def print_report(report: dict[str, Any], locale: str = DEFAULT_LOCALE) -> None:
    """The report as a person reads it, in ``locale``: one table per part (overall, then each segment). The report's
    reason and notes are worded already (:func:`localise_report`); numbers stay machine-precise."""
    from rich.console import Console
    from rich.table import Table

    def say(code: str, **params: Any) -> str:
        return text_of(code, locale, **params)

    out = Console()
    info = report["_info"]
    out.print(say("report.sent", campaign=info["campaign_id"], date=info["sent_at"], treated=info["treated"],
                  control=info["control"], windows=info["response_window_days"]))
    if not report["causal"]:
        out.print(say("report.no_causal", reason=report["reason"]))
        out.print(say("report.observed", figures=", ".join(f"{say('report.' + k)} {v:.4f}"
                                                           for k, v in report["observed"].items())))
        return
    if report.get("note"):
        out.print(say("report.note", note=report["note"]))
    fmt = lambda v: "-" if v is None else f"{v:,.4f}"  # noqa: E731
    parts = {say("report.all_customers"): report["overall"], **report.get("segments", {})}
    for name, part in parts.items():
        table = Table(title=say("report.part", part=name, treated=part["treated"], control=part["control"]))
        columns = ("report.metric", "report.treated", "report.control", "report.difference", "report.interval",
                   "report.relative_lift")
        for col in columns:
            table.add_column(say(col, level=info["confidence"]) if col == "report.interval" else say(col),
                             justify="left" if col == "report.metric" else "right")
        for metric in METRICS:
            m = part[metric]
            rel = "-" if m["relative_lift"] is None else f"{100 * m['relative_lift']:+.1f}%"
            table.add_row(say(f"report.{metric}"), fmt(m["treated"]), fmt(m["control"]), fmt(m["difference"]),
                          f"{fmt(m['ci_low'])} .. {fmt(m['ci_high'])}", rel)
        inc = part["incremental_revenue"]
        table.add_row(say("report.incremental_revenue"), "", "", fmt(inc["value"]),
                      f"{fmt(inc['ci_low'])} .. {fmt(inc['ci_high'])}", "")
        if part["roi"] is not None:
            roi = part["roi"]
            table.add_row(say("report.roi", cost=f"{part['cost']:,.2f}"), "", "", fmt(roi["value"]),
                          f"{fmt(roi['ci_low'])} .. {fmt(roi['ci_high'])}", "")
        out.print(table)
