"""Moments to reach out to a customer, found as of a cutoff from data strictly before it.

- ``replenishment``: a product the customer re-buys on a cycle is due again, by the very timing the recommender's
  repeat-purchase generator learns (:func:`models.recommenders.signals.pair_history`, worded by
  :func:`models.recommenders.repeat.timing_reasons`: "you buy this about every 30 days (due in about 5 days)").
- ``occasion``: purchases in the same calendar window in several years (an anniversary, Valentine's, 520) or on
  the days before a movable date (Qixi); the confidence is one minus the chance of such a pattern by coincidence
  at the customer's own purchase rate (see :class:`models.moments.config.OccasionConfig`).
- ``birthday``: the next birthday, from ``customers.birth_date``.
- ``tier_upgrade``: 12-month spend within reach of the next membership tier.

Every moment carries suggested products with a reason each, from the recommender's own policy (the list the
storefront would show, within the occasion's category for an occasion). :func:`find_moments` is the one
implementation; training precomputes its table for serving.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import binom

from features.i18n import message
from features.columns import Columns as C
from features.columns import Tables
from features.codes import among
from features.exceptions import DataError
from features.purchases import without_returns
from models.moments.config import MomentsConfig, OccasionConfig

REPLENISHMENT, BIRTHDAY, OCCASION, TIER_UPGRADE = "replenishment", "birthday", "occasion", "tier_upgrade"
KINDS = (REPLENISHMENT, BIRTHDAY, OCCASION, TIER_UPGRADE)
ANNIVERSARY = "anniversary"  # an occasion learned from dates that no named occasion explains
COLUMNS = (C.customer_id, "kind", "name", "date", "confidence", "description", "products", "reasons")

# Day of the year on a 366-day circle (as in a leap year), so 1 March is the same day every year.
_MONTH_START = np.array([0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])
_YEAR = 366

Suggest = Callable[[pd.DataFrame], pd.DataFrame]


def empty_moments() -> pd.DataFrame:
    """A moments table without rows, with the column types of :func:`find_moments`."""
    return pd.DataFrame({C.customer_id: pd.Series(dtype="str"), "kind": pd.Series(dtype="str"),
                         "name": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
                         "confidence": pd.Series(dtype="float64"), "description": pd.Series(dtype="str"),
                         "products": pd.Series(dtype=object), "reasons": pd.Series(dtype=object)})


def find_moments(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, config: MomentsConfig, *,
                 customers: pd.Series | None = None, features: pd.DataFrame | None = None,
                 tiers: dict[str, float] | None = None, current_tier: pd.Series | None = None,
                 p_alive: pd.Series | None = None, suggest: Suggest | None = None) -> pd.DataFrame:
    """Every customer's moments from ``cutoff`` up to ``config.horizon_days`` ahead.

    Parameters
    ----------
    tables
        Canonical tables (customers already pseudonymised, erased customers already dropped).
    cutoff
        Only data strictly before it is read; moments fall on or after it.
    config
        The settings (section ``moments`` of configs/segments.yaml).
    customers
        Customers who may be profiled (None: everyone in the data); nobody else gets a moment.
    features
        Point-in-time features as of ``cutoff`` (``customer_id``, ``spend_365d``, ``monetary_avg_order``):
        needed for tier upgrades.
    tiers
        Tier name -> 12-month spend threshold of the tiers above the lowest, ascending (the programme's, or the
        learned membership tiers); None: no tier upgrades.
    current_tier
        Each customer's present tier (index: customer_id); a customer already at or above the next tier by
        another rule (order count) gets no upgrade moment.
    p_alive
        P(alive) per customer (index: customer_id): a tier upgrade of a customer who has probably left is unlikely.
    suggest
        Suggested products: takes ``customer_id`` and ``category`` (None: any) rows and returns ``customer_id``,
        ``category``, ``products`` and ``reasons`` (see :func:`recommender_suggestions`); None: only a refill's
        own product.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``kind``, ``name`` (the occasion, the next tier), ``date``, ``confidence`` (0-1),
        ``description``, ``products`` and ``reasons`` (lists of equal length), sorted by date, customer and kind.
    """
    cutoff = pd.Timestamp(cutoff).normalize()
    parts = [replenishment_moments(tables, cutoff, config), birthday_moments(tables, cutoff),
             occasion_moments(tables, cutoff, config.occasion)]
    if features is not None and tiers:
        parts.append(tier_moments(features, tiers, cutoff, config, current_tier, p_alive))
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_moments()
    frame = pd.concat(parts, ignore_index=True)
    frame[C.customer_id] = frame[C.customer_id].astype("str")
    end = cutoff + pd.Timedelta(days=config.horizon_days)
    keep = (frame["date"] >= cutoff) & (frame["date"] < end)
    if customers is not None:
        keep &= among(frame[C.customer_id], customers.astype("str"))
    frame = frame[keep].reset_index(drop=True)
    if suggest is not None and config.suggestions > 0:
        frame = _with_suggestions(frame, suggest)
    for col in ("products", "reasons"):
        frame[col] = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [] for v in frame[col]]
    frame["confidence"] = frame["confidence"].astype(float).round(4)
    frame = frame.sort_values(["date", C.customer_id, "kind", "name"], kind="stable").reset_index(drop=True)
    return frame[list(COLUMNS)]


# ------------------------------------------------------------------------------------------------ replenishment

def replenishment_moments(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp,
                          config: MomentsConfig) -> pd.DataFrame:
    """Products due again within ``replenishment.horizon_days``: bought on at least
    :data:`~models.recommenders.repeat.CYCLE_MIN_PURCHASE_DAYS` days, not lapsed (``lapsed_cycles`` usual gaps
    without it). Confidence grows with the cycles seen, ``1 - 1 / (days - 1)``, and fades as the refill is
    overdue (``exp(-overdue / gap)``); an overdue refill is dated at the cutoff."""
    from models.recommenders.data import purchase_log
    from models.recommenders.repeat import CYCLE_MIN_PURCHASE_DAYS, timing_reasons
    from models.recommenders.signals import pair_history

    if C.product_id not in tables[Tables.transactions].columns:
        return empty_moments()
    try:
        log, customers, products = purchase_log(tables, cutoff)
    except DataError:
        return empty_moments()
    history = pair_history(log, len(products))
    cfg = config.replenishment
    gap, since, days = history.gap, history.last_age, history.days
    with np.errstate(invalid="ignore"):
        due = gap - since
        keep = ((days >= CYCLE_MIN_PURCHASE_DAYS) & np.isfinite(gap) & (gap > 0)
                & (since <= cfg.lapsed_cycles * gap) & (due < cfg.horizon_days))
    if not keep.any():
        return empty_moments()
    gap, since, days, due = gap[keep], since[keep], days[keep], due[keep]
    reasons = timing_reasons(gap, since, days)
    confidence = (1.0 - 1.0 / (days - 1.0)) * np.exp(-np.maximum(-due, 0.0) / gap)
    product = products.external_ids[history.item[keep]]
    return pd.DataFrame({
        C.customer_id: customers.external_ids[history.user[keep]], "kind": REPLENISHMENT,
        "name": pd.Series(product, dtype="str"),
        "date": cutoff + pd.to_timedelta(np.ceil(np.maximum(due, 0.0)), unit="D"),
        "confidence": confidence, "description": reasons,
        "products": [[p] for p in product], "reasons": [[r] for r in reasons]})


# ----------------------------------------------------------------------------------------------------- birthday

def next_month_day(month_day: pd.Series, cutoff: pd.Timestamp) -> pd.Series:
    """The first date on or after ``cutoff`` of each ``MM-DD`` (29 February is kept on 28 February in other
    years); missing values stay NaT."""
    text = month_day.astype("string")
    out = pd.Series(pd.NaT, index=month_day.index, dtype="datetime64[ns]")
    for year in (cutoff.year, cutoff.year + 1, cutoff.year + 2):
        dates = pd.to_datetime(str(year) + "-" + text, format="%Y-%m-%d", errors="coerce")
        leap_day = (text == "02-29").fillna(False).to_numpy(dtype=bool) & dates.isna().to_numpy()
        dates = dates.where(~leap_day, pd.Timestamp(year=year, month=2, day=28))
        fill = out.isna() & (dates >= cutoff)
        out[fill] = dates[fill]
    return out


def birthday_moments(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> pd.DataFrame:
    """The next birthday of every customer whose ``birth_date`` is known (confidence 1: the customer gave it)."""
    table = tables.get(Tables.customers)
    if table is None or C.birth_date not in table.columns:
        return empty_moments()
    known = table[table[C.birth_date].notna()]
    if known.empty:
        return empty_moments()
    dates = next_month_day(known[C.birth_date], cutoff)
    return pd.DataFrame({C.customer_id: known[C.customer_id].astype("str").to_numpy(), "kind": BIRTHDAY,
                         "name": None, "date": dates.to_numpy(), "confidence": 1.0,
                         "description": [message("moment.birthday", day=d.strftime("%Y-%m-%d")) for d in dates],
                         "products": None, "reasons": None})


# ----------------------------------------------------------------------------------------------------- occasion

def _doy(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    dates = pd.DatetimeIndex(dates)
    return _MONTH_START[dates.month.to_numpy() - 1] + dates.day.to_numpy() - 1


def _date_of(year: np.ndarray, doy: np.ndarray) -> pd.DatetimeIndex:
    """The date of day ``doy`` (366-day circle) in ``year``; 29 February falls on 28 February in other years."""
    year = np.asarray(year, dtype=np.int64)
    doy = np.asarray(doy, dtype=np.int64) % _YEAR
    month = np.searchsorted(_MONTH_START, doy, side="right")
    day = doy - _MONTH_START[month - 1] + 1
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    day = np.where((month == 2) & (day == 29) & ~leap, 28, day)
    return pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}))


def _purchase_days(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> pd.DataFrame:
    """One row per customer and purchase day before the cutoff (returns left out), with the category of the
    day's largest line when the products table names one."""
    tx = tables[Tables.transactions]
    tx = without_returns(tx[tx[C.timestamp] < cutoff])
    frame = pd.DataFrame({C.customer_id: tx[C.customer_id].astype("str").to_numpy(),
                          "day": tx[C.timestamp].dt.normalize().to_numpy(),
                          "amount": tx[C.amount].to_numpy(dtype=float)})
    products = tables.get(Tables.products)
    if C.product_id in tx.columns and products is not None and C.category in products.columns:
        category = products.drop_duplicates(C.product_id).set_index(C.product_id)[C.category]
        frame["category"] = category.reindex(tx[C.product_id]).to_numpy()
    else:
        frame["category"] = None
    frame = frame.sort_values("amount", ascending=False, kind="stable")
    return frame.drop_duplicates([C.customer_id, "day"]).reset_index(drop=True)


def occasion_moments(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, cfg: OccasionConfig) -> pd.DataFrame:
    """Occasions learned from recurring purchase dates (see :class:`models.moments.config.OccasionConfig`)."""
    days = _purchase_days(tables, cutoff)
    if days.empty:
        return empty_moments()
    stats = days.groupby(C.customer_id).agg(n_days=("day", "size"), first_day=("day", "min"))
    span = np.maximum((cutoff - stats["first_day"]).dt.days.to_numpy(dtype=float), 365.0)
    stats["rate"] = stats["n_days"].to_numpy() / span  # purchase days per day
    season = _season(days["day"], cfg.window_days)
    movable = {name: pd.DatetimeIndex(sorted(pd.to_datetime(list(spec.dates)))) for name, spec in cfg.named.items()
               if spec.dates}
    lifts = {name: _movable_lift(days["day"], dates, cfg.lead_days) for name, dates in movable.items()}
    stats = stats[stats["n_days"] >= cfg.min_years]
    days = days[among(days[C.customer_id], stats.index)].reset_index(drop=True)
    if days.empty:
        return empty_moments()
    parts = [_calendar_occasions(days, stats, cutoff, cfg, season),
             _movable_occasions(days, stats, cutoff, cfg, movable, lifts)]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else empty_moments()


def _season(day: pd.Series, half: int) -> np.ndarray:
    """Per day of the year, how many times more of the shop's purchase days fall in its window (``half`` days
    either side) than an even year would put there: a window everyone shops in (Valentine's) is a weaker sign
    of a personal occasion."""
    counts = np.bincount(_doy(day), minlength=_YEAR).astype(float)
    counts = (counts + 1.0) / (counts.sum() + _YEAR)  # one imagined purchase a day keeps empty days finite
    width = 2 * half + 1
    window = sum(np.roll(counts, shift) for shift in range(-half, half + 1))
    return np.maximum(window / (width / _YEAR), 1e-3)


def _movable_lift(day: pd.Series, dates: pd.DatetimeIndex, lead: int) -> float:
    """How many times more of the shop's purchase days fall in the ``lead`` days before a movable occasion than
    its share of the calendar."""
    day = pd.DatetimeIndex(day)
    lo, hi = day.min(), day.max()
    at = np.minimum(np.searchsorted(dates.values, day.values, side="left"), len(dates) - 1)
    before = (dates[at] - day).days.to_numpy()
    inside = ((before >= 0) & (before <= lead)).mean()
    covered = sum(max(0, (min(d, hi) - max(d - pd.Timedelta(days=lead), lo)).days + 1) for d in dates)
    share = covered / max((hi - lo).days + 1, 1)
    return float(max(inside / share, 1e-3)) if share > 0 else 1.0


def _mode_by(groups: np.ndarray, values: np.ndarray) -> pd.Series:
    """The most frequent non-missing value per group (ties: the first in sort order)."""
    frame = pd.DataFrame({"g": groups, "v": values}).dropna()
    if frame.empty:
        return pd.Series(dtype=object)
    counts = frame.groupby(["g", "v"], sort=True).size()
    best = counts.groupby(level=0).idxmax()
    return pd.Series([v for _, v in best], index=best.index, dtype=object)


def _years_by(groups: np.ndarray, years: np.ndarray) -> pd.Series:
    """The distinct years of each group, ascending (index: the groups, sorted): the years an occasion's text
    names, found in one sort rather than a Python call per group."""
    pairs = pd.DataFrame({"g": groups, "y": years}).drop_duplicates().sort_values(["g", "y"], kind="stable")
    if pairs.empty:
        return pd.Series(dtype=object)
    g, y = pairs["g"].to_numpy(), pairs["y"].to_numpy()
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return pd.Series(np.split(y, starts[1:]), index=g[starts], dtype=object)


def _observable_years(first_day: np.ndarray, doy: np.ndarray, cutoff: pd.Timestamp, half: int) -> np.ndarray:
    """In how many years the window of ``doy`` (``half`` days either side) ended before the cutoff and not
    before the customer's first purchase day."""
    first_day = pd.DatetimeIndex(first_day)
    count = np.zeros(len(doy), dtype=np.int64)
    for year in range(int(first_day.year.min()) - 1, cutoff.year + 1):
        end = _date_of(np.full(len(doy), year), doy) + pd.Timedelta(days=half)
        count += ((end >= first_day) & (end < cutoff)).to_numpy()
    return count


def _calendar_occasions(days: pd.DataFrame, stats: pd.DataFrame, cutoff: pd.Timestamp, cfg: OccasionConfig,
                        season: np.ndarray) -> pd.DataFrame:
    half = cfg.window_days
    # The chance of a purchase in one window, in the quietest window of the year (a bound for the pruning).
    q_of = 1.0 - np.exp(-stats["rate"].to_numpy() * (2 * half + 1) * season.min())
    years_max = cutoff.year - pd.DatetimeIndex(stats["first_day"]).year.to_numpy() + 1
    # Frequent buyers hit every window by chance: even a hit in every year cannot make them confident.
    best_case = q_of ** np.maximum(years_max - 1, 1) * stats["n_days"].to_numpy()
    hopeful = stats.index[best_case < 1.0 - cfg.min_confidence]
    days = days[among(days[C.customer_id], hopeful)].reset_index(drop=True)
    if days.empty:
        return empty_moments()
    days["doy"] = _doy(days["day"])
    days["year"] = pd.DatetimeIndex(days["day"]).year.to_numpy()
    days["anchor"] = np.arange(len(days))
    pairs = days[[C.customer_id, "anchor", "doy"]].merge(days[[C.customer_id, "doy", "year", "category"]],
                                                         on=C.customer_id, suffixes=("", "_hit"))
    offset = (pairs["doy_hit"].to_numpy() - pairs["doy"].to_numpy() + _YEAR // 2) % _YEAR - _YEAR // 2
    pairs["offset"] = offset
    pairs = pairs[np.abs(offset) <= half]
    by_anchor = pairs.groupby("anchor", sort=True)
    anchors = pd.DataFrame({"years": by_anchor["year"].nunique(), "offset": by_anchor["offset"].median()})
    anchors["category"] = _mode_by(pairs["anchor"].to_numpy(), pairs["category"].to_numpy()).reindex(anchors.index)
    anchors = anchors.join(days.set_index("anchor")[[C.customer_id, "doy"]])
    anchors = anchors[anchors["years"] >= cfg.min_years]
    if anchors.empty:
        return empty_moments()
    anchors["typical"] = (anchors["doy"] + np.rint(anchors["offset"]).astype(np.int64)) % _YEAR
    st = stats.loc[anchors[C.customer_id]]
    observable = np.maximum(_observable_years(st["first_day"].to_numpy(), anchors["typical"].to_numpy(), cutoff,
                                              half), anchors["years"].to_numpy())
    q = 1.0 - np.exp(-st["rate"].to_numpy() * (2 * half + 1) * season[anchors["typical"].to_numpy()])
    # The anchor's own year is a hit by construction: the others are the test, over every window tried (each
    # purchase day anchors one, and a cluster hit in k years is found from k of them: n_days / k windows).
    years = anchors["years"].to_numpy()
    chance = binom.sf(years - 2, observable - 1, q) * st["n_days"].to_numpy() / years
    anchors["confidence"] = 1.0 - np.clip(chance, 0.0, 1.0)
    anchors = anchors[anchors["confidence"] >= cfg.min_confidence]
    chosen = _distinct_windows(anchors, 2 * half, cfg.max_per_customer)
    if chosen.empty:
        return empty_moments()
    typical = chosen["typical"].to_numpy()
    this_year = _date_of(np.full(len(chosen), cutoff.year), typical)
    next_year = _date_of(np.full(len(chosen), cutoff.year + 1), typical)
    dates = np.where(this_year >= cutoff, this_year, next_year)
    named = _fixed_names(typical, cfg)
    year_lists = _years_by(pairs["anchor"].to_numpy(), pairs["year"].to_numpy()).reindex(chosen.index)
    return pd.DataFrame({
        C.customer_id: chosen[C.customer_id].to_numpy(), "kind": OCCASION, "name": named, "date": dates,
        "confidence": chosen["confidence"].to_numpy(),
        "description": [_occasion_text(name, pd.Timestamp(d), years, cat)
                        for name, d, years, cat in zip(named, dates, year_lists, chosen["category"])],
        "products": None, "reasons": None, "category": chosen["category"].to_numpy()})


def _distinct_windows(anchors: pd.DataFrame, apart: int, most: int) -> pd.DataFrame:
    """Per customer, the most confident anchors whose typical days are more than ``apart`` days apart."""
    ranked = anchors.sort_values([C.customer_id, "confidence", "years"], ascending=[True, False, False],
                                 kind="stable")
    chosen = []
    for _, group in ranked.groupby(C.customer_id, sort=False):
        picked: list[int] = []
        for idx, day in zip(group.index, group["typical"].to_numpy()):
            far = all(min(abs(day - d), _YEAR - abs(day - d)) > apart for d in group.loc[picked, "typical"])
            if far:
                picked.append(idx)
                if len(picked) == most:
                    break
        chosen += picked
    return anchors.loc[chosen]


def _fixed_names(typical: np.ndarray, cfg: OccasionConfig) -> list[str]:
    """The named same-date occasion whose gift days (``lead_days`` before it, to ``window_days`` after) hold each
    typical day, else ``anniversary``."""
    names = np.full(len(typical), ANNIVERSARY, dtype=object)
    for name, spec in cfg.named.items():
        if spec.month_day is None:
            continue
        month, day = int(spec.month_day[:2]), int(spec.month_day[3:])
        target = _MONTH_START[month - 1] + day - 1
        before = (target - typical) % _YEAR
        inside = (before <= cfg.lead_days) | (_YEAR - before <= cfg.window_days)
        names[(names == ANNIVERSARY) & inside] = name
    return names.tolist()


def _occasion_text(name: str, date: pd.Timestamp, years: Any, category: Any) -> str:
    """A message (features.i18n): what was bought around which day in which years, and the occasion's name."""
    params: dict[str, Any] = {"day": date.strftime("%Y-%m-%d"), "years": [int(y) for y in sorted(years)]}
    code = "moment.occasion"
    if isinstance(category, str) and category:
        code, params["category"] = code + "_category", category
    if name != ANNIVERSARY:
        code, params["occasion"] = code + "_named", name
    return message(code, **params)


def _movable_occasions(days: pd.DataFrame, stats: pd.DataFrame, cutoff: pd.Timestamp, cfg: OccasionConfig,
                       movable: dict[str, pd.DatetimeIndex], lifts: dict[str, float]) -> pd.DataFrame:
    frames = []
    day = pd.DatetimeIndex(days["day"])
    for name, dates in movable.items():
        # Each purchase day against the next occurrence on or after it (gifts come before the day).
        at = np.minimum(np.searchsorted(dates.values, day.values, side="left"), len(dates) - 1)
        occurrence = dates[at]
        before = (occurrence - day).days.to_numpy()
        hit = (before >= 0) & (before <= cfg.lead_days) & (occurrence < cutoff)
        if not hit.any():
            continue
        hits = pd.DataFrame({C.customer_id: days.loc[hit, C.customer_id].to_numpy(),
                             "year": occurrence[hit].year.to_numpy(), "before": before[hit],
                             "category": days.loc[hit, "category"].to_numpy()})
        grouped = hits.groupby(C.customer_id)
        found = pd.DataFrame({"years": grouped["year"].nunique(), "before": grouped["before"].median()})
        found["year_list"] = _years_by(hits[C.customer_id].to_numpy(), hits["year"].to_numpy())
        found["category"] = _mode_by(hits[C.customer_id].to_numpy(), hits["category"].to_numpy()).reindex(
            found.index)
        found = found[found["years"] >= cfg.min_years]
        if found.empty:
            continue
        st = stats.loc[found.index]
        first = pd.DatetimeIndex(st["first_day"])
        # Occurrences d with d + 1 day >= the first purchase day and d < cutoff (both prefixes of the sorted dates).
        observable = np.maximum(int(np.searchsorted(dates.values, cutoff.to_datetime64(), side="left"))
                                - np.searchsorted((dates + pd.Timedelta(days=1)).values, first.values, side="left"), 0)
        q = 1.0 - np.exp(-st["rate"].to_numpy() * (cfg.lead_days + 1) * lifts[name])
        chance = binom.sf(found["years"].to_numpy() - 1, np.maximum(observable, found["years"].to_numpy()), q)
        confidence = 1.0 - np.clip(chance * len(movable), 0.0, 1.0)
        lead = np.rint(found["before"].to_numpy()).astype(np.int64)
        # The first occurrence d with d - lead >= cutoff, dated lead days before it (NaT when none is left).
        next_at = np.searchsorted(dates.values, (cutoff + pd.to_timedelta(lead, unit="D")).values, side="left")
        upcoming = [dates[at] - pd.Timedelta(days=before_days) if at < len(dates) else pd.NaT
                    for at, before_days in zip(next_at.tolist(), lead.tolist())]
        frame = pd.DataFrame({C.customer_id: found.index.to_numpy(), "kind": OCCASION, "name": name,
                              "date": pd.DatetimeIndex(upcoming), "confidence": confidence,
                              "year_list": found["year_list"].to_numpy(), "category": found["category"].to_numpy()})
        frame = frame[(frame["confidence"] >= cfg.min_confidence) & frame["date"].notna()]
        frame["description"] = [_occasion_text(name, pd.Timestamp(d), years, cat) for d, years, cat in
                                zip(frame["date"], frame["year_list"], frame["category"])]
        frames.append(frame.drop(columns="year_list").assign(products=None, reasons=None))
    return pd.concat(frames, ignore_index=True) if frames else empty_moments()


# ------------------------------------------------------------------------------------------------- tier upgrade

def tier_moments(features: pd.DataFrame, tiers: dict[str, float], cutoff: pd.Timestamp, config: MomentsConfig,
                 current_tier: pd.Series | None = None, p_alive: pd.Series | None = None) -> pd.DataFrame:
    """Customers whose 12-month spend is below the next tier's threshold by at most ``max_gap_orders`` of their
    usual orders. Confidence: the share of the gap one usual order covers (at most 1), times P(alive) when
    given. Dated at the cutoff: the spend that counts is the next 12 months'."""
    needed = {C.customer_id, "spend_365d", "monetary_avg_order"}
    if not needed <= set(features.columns) or not tiers:
        return empty_moments()
    from models.segments.rfm import cuts_beaten

    names = list(tiers)
    cuts = np.asarray(list(tiers.values()), dtype=float)
    spend = features["spend_365d"].to_numpy(dtype=float)
    order = features["monetary_avg_order"].to_numpy(dtype=float)
    ids = features[C.customer_id].astype("str")
    reached = cuts_beaten(np.nan_to_num(spend, nan=0.0), cuts)  # tiers above the lowest already reached
    if current_tier is not None:
        ranks = {name: i for i, name in enumerate(names, start=1)}
        held = current_tier.reindex(ids).map(lambda t: ranks.get(t, 0)).fillna(0).to_numpy(dtype=np.int64)
        reached = np.maximum(reached, held)
    has_next = reached < len(cuts)
    gap = np.where(has_next, cuts[np.minimum(reached, len(cuts) - 1)] - spend, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        close = has_next & (spend > 0) & (order > 0) & (gap > 0) & (gap <= config.tier_upgrade.max_gap_orders * order)
        confidence = np.minimum(1.0, order / gap)
    if p_alive is not None:
        confidence = confidence * p_alive.reindex(ids).fillna(1.0).to_numpy(dtype=float)
    rows = np.flatnonzero(close)
    target = [names[reached[r]] for r in rows]
    now = [names[reached[r] - 1] if reached[r] > 0 else None for r in rows]
    return pd.DataFrame({
        C.customer_id: ids.to_numpy()[rows], "kind": TIER_UPGRADE, "name": target, "date": cutoff,
        "confidence": confidence[rows],
        "description": [message("moment.tier_upgrade", amount=float(gap[r]), tier=t, current=n) if n is not None
                        else message("moment.tier_upgrade_first", amount=float(gap[r]), tier=t)
                        for r, t, n in zip(rows, target, now)],
        "products": None, "reasons": None})


def learned_tiers(membership: Any) -> dict[str, float]:
    """Tier name -> 12-month spend threshold of a fitted :class:`models.segments.value.MembershipTiers`."""
    names = list(membership.settings.shares)[1:]
    return dict(zip(names, [float(c) for c in membership.spend_cuts_]))


# -------------------------------------------------------------------------------------------------- suggestions

def _with_suggestions(frame: pd.DataFrame, suggest: Suggest) -> pd.DataFrame:
    wanted = frame["kind"] != REPLENISHMENT  # a refill suggests its own product
    if not wanted.any():
        return frame
    category = frame["category"] if "category" in frame.columns else pd.Series(None, index=frame.index)
    requests = pd.DataFrame({C.customer_id: frame.loc[wanted, C.customer_id].to_numpy(),
                             "category": category[wanted].where(category[wanted].notna(), None).to_numpy()})
    requests = requests.drop_duplicates().reset_index(drop=True)
    found = suggest(requests)
    key = found[C.customer_id].astype("str") + "\x1f" + found["category"].fillna("").astype("str")
    products = dict(zip(key, found["products"]))
    reasons = dict(zip(key, found["reasons"]))
    frame_key = frame[C.customer_id].astype("str") + "\x1f" + category.fillna("").astype("str")
    frame = frame.copy()
    frame.loc[wanted, "products"] = pd.Series([products.get(k, []) for k in frame_key[wanted]],
                                              index=frame.index[wanted], dtype=object)
    frame.loc[wanted, "reasons"] = pd.Series([reasons.get(k, []) for k in frame_key[wanted]],
                                             index=frame.index[wanted], dtype=object)
    return frame


def recommender_suggestions(model: Any, n: int, batch: int = 10_000) -> Suggest:
    """Suggestions by the recommender's own policy (:meth:`Recommender.recommend`, default filters): the list the
    storefront would show the customer, within the asked category when there is one."""
    from models.recommenders.filters import Filters

    def suggest(requests: pd.DataFrame) -> pd.DataFrame:
        out = []
        for category, group in requests.groupby(requests["category"].fillna(""), sort=True):
            filters = Filters(categories=(category,)) if category else None
            ids = group[C.customer_id].astype("str").tolist()
            for start in range(0, len(ids), batch):
                recs = model.recommend(ids[start:start + batch], n=n, filters=filters, locale=None)
                out.append(_lists_by_customer(recs).assign(category=category or None))
        if not out:
            return pd.DataFrame(columns=[C.customer_id, "category", "products", "reasons"])
        return pd.concat(out, ignore_index=True)

    return suggest


def _lists_by_customer(recs: pd.DataFrame) -> pd.DataFrame:
    """``customer_id``, ``products`` and ``reasons`` (lists, in the rows' order) per customer of ``recs``, the
    customers in the order they first appear: one stable sort instead of a Python call per customer."""
    if recs.empty:
        return pd.DataFrame({C.customer_id: pd.Series(dtype=object), "products": pd.Series(dtype=object),
                             "reasons": pd.Series(dtype=object)})
    codes, customers = pd.factorize(recs[C.customer_id].to_numpy())
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(customers)))[:-1]

    def lists(column: str) -> list[list[Any]]:
        return [part.tolist() for part in np.split(recs[column].to_numpy(dtype=object)[order], bounds)]

    return pd.DataFrame({C.customer_id: customers, "products": lists(C.product_id), "reasons": lists("reason")})
