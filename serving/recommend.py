"""Request-time recommendation: a lookup of precomputed candidates, filters as numpy masks, event re-ranking.

The heavy work (ranking, similarity, popularity) happened in training; here a personal request slices the
customer's top-k, masks it by stock / category / price / already bought and takes the first n. Only customers
with events since the model's cutoff take the slower path that blends related items into the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from serving.compiled import RecommenderPart
from serving.snapshot import Snapshot

PERSONAL, COLD_START, NON_PERSONAL = "personal", "cold_start", "non_personal"

# How strongly a recent event says "show me things like this", and how its reason reads.
EVENT_WEIGHTS = {"cart": 1.0, "wishlist": 0.8, "try_on": 0.8, "view": 0.5}
EVENT_REASONS = {"cart": "goes with {} in your cart", "wishlist": "similar to {} on your wishlist",
                 "try_on": "similar to {} you tried on", "view": "similar to {} you viewed"}
MAX_TOUCHED = 10  # recent products that boost related items
RECENCY_DECAY = 0.85  # each older touched product counts this much less than the one after it


@dataclass(frozen=True)
class Filters:
    """What a caller allows in the results."""

    exclude_bought: bool | None = None  # None: the model's default (manifest exclude_bought_default)
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    in_stock_only: bool = True
    price_min: float | None = None
    price_max: float | None = None

    @property
    def plain(self) -> bool:
        """No category or price filter."""
        return not (self.categories or self.exclude_categories) and self.price_min is None and self.price_max is None


@dataclass(frozen=True)
class RecentEvent:
    """One event of a customer as the journal replays it."""

    ts: float
    event_type: str
    product_id: str


def allowed(rec: RecommenderPart, items: np.ndarray, f: Filters) -> np.ndarray | None:
    """Mask of ``items`` that pass the filters (None: all pass)."""
    a = rec.a
    mask = a["prod_in_stock"][items] if f.in_stock_only else None
    if f.categories:
        codes = [rec.category_index[c] for c in f.categories if c in rec.category_index]
        cats = a["prod_category"][items]
        m = cats == codes[0] if len(codes) == 1 else np.isin(cats, codes)
        mask = m if mask is None else mask & m
    if f.exclude_categories:
        codes = [rec.category_index[c] for c in f.exclude_categories if c in rec.category_index]
        if codes:
            m = ~np.isin(a["prod_category"][items], codes)
            mask = m if mask is None else mask & m
    if f.price_min is not None or f.price_max is not None:
        price = a["prod_price"][items]
        m = np.ones(len(items), bool)
        if f.price_min is not None:
            m &= price >= f.price_min
        if f.price_max is not None:
            m &= price <= f.price_max
        mask = m if mask is None else mask & m
    return mask


class Result:
    """Items picked so far for one response (product codes, scores, reason texts)."""

    __slots__ = ("items", "scores", "reasons", "seen")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.scores: list[float] = []
        self.reasons: list[str] = []
        self.seen: set[int] = set()

    def extend(self, items: Sequence[int], scores: Sequence[float], reasons: Sequence[str]) -> None:
        self.items.extend(items)
        self.scores.extend(scores)
        self.reasons.extend(reasons)
        self.seen.update(items)

    def body(self, rec: RecommenderPart) -> list[dict[str, Any]]:
        ids = rec.product_ids
        return [{"product_id": ids[i], "score": s, "reason": r}
                for i, s, r in zip(self.items, self.scores, self.reasons)]


def _rounded(scores: np.ndarray) -> list[float]:
    # float32 scores printed as float64 read 0.8999999761581421; six decimals say what the model said.
    return np.round(scores.astype(np.float64), 6).tolist()


def _fill_popular(rec: RecommenderPart, result: Result, n: int, groups: Iterable[tuple[str, str]], f: Filters,
                  excluded: set[int] | None) -> None:
    """Top up ``result`` to ``n`` items from popular lists, in the order of ``groups``; scores never rise."""
    a = rec.a
    for group in groups:
        if len(result.items) >= n:
            return
        g = rec.pop_groups.get(group)
        if g is None:
            continue
        s, e = int(a["pop_offsets"][g]), int(a["pop_offsets"][g + 1])
        items = a["pop_items"][s:e]
        mask = allowed(rec, items, f)
        keep = np.flatnonzero(mask) if mask is not None else np.arange(len(items))
        scores = a["pop_scores"][s:e]
        reasons = a["pop_reasons"][s:e]
        floor = result.scores[-1] if result.scores else None
        for k in keep.tolist():
            item = int(items[k])
            if item in result.seen or (excluded is not None and item in excluded):
                continue
            score = round(float(scores[k]), 6)
            if floor is not None and score > floor:
                score = floor
            result.extend((item,), (score,), (rec.reasons[int(reasons[k])],))
            floor = score
            if len(result.items) >= n:
                return


def _popular_groups(rec: RecommenderPart, f: Filters, region: str | None) -> list[tuple[str, str]]:
    groups = []
    if len(f.categories) == 1:
        groups.append(("category", f.categories[0]))
    if region:
        groups.append(("region", region))
    groups.append(("all", ""))
    return groups


def _event_boosts(rec: RecommenderPart, touched: list[tuple[int, str]]) -> dict[int, tuple[float, str]]:
    """Related items of recently touched products: item -> (boost in 0..1-ish, reason of the strongest)."""
    a = rec.a
    acc: dict[int, float] = {}
    best: dict[int, tuple[float, str]] = {}
    for order, (item, event_type) in enumerate(touched):
        weight = EVENT_WEIGHTS.get(event_type, 0.5) * RECENCY_DECAY ** order
        s, e = int(a["sim_offsets"][item]), int(a["sim_offsets"][item + 1])
        if e <= s:
            continue
        scores = np.asarray(a["sim_scores"][s:e], dtype=np.float64)
        top = scores.max()
        norm = scores / top if top > 0 else 1.0 / (1.0 + np.arange(e - s))
        reason = EVENT_REASONS.get(event_type, EVENT_REASONS["view"]).format(rec.product_label(item))
        for q, v in zip(a["sim_items"][s:e].tolist(), norm.tolist()):
            b = weight * v
            acc[q] = acc.get(q, 0.0) + b
            if b > best.get(q, (0.0, ""))[0]:
                best[q] = (b, reason)
    return {q: (v, best[q][1]) for q, v in acc.items()}


def _bought(rec: RecommenderPart, row: int) -> np.ndarray:
    a = rec.a
    return a["bought_items"][int(a["bought_offsets"][row]):int(a["bought_offsets"][row + 1])]


def _split_events(rec: RecommenderPart, events: Sequence[RecentEvent]) -> tuple[set[int], list[tuple[int, str]]]:
    """Products bought since the cutoff, and the most recent distinct products otherwise touched (newest first)."""
    just_bought: set[int] = set()
    touched: list[tuple[int, str]] = []
    seen: set[int] = set()
    for ev in reversed(events):
        if ev.ts < rec.cutoff_ts:  # the model saw it already
            continue
        item = rec.product_index.get(ev.product_id)
        if item is None:
            continue
        if ev.event_type == "purchase":
            just_bought.add(item)
        elif item not in seen and len(touched) < MAX_TOUCHED:
            seen.add(item)
            touched.append((item, ev.event_type))
    return just_bought, touched


def _ranked(rec: RecommenderPart, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A customer's rows in rank order (stored with the default-allowed ones first): items, scores, reasons,
    bought-before flags."""
    a = rec.a
    order = np.argsort(a["rec_rank"][start:end], kind="stable")
    return (a["rec_items"][start:end][order], a["rec_scores"][start:end][order],
            a["rec_reasons"][start:end][order], a["rec_bought"][start:end][order])


def recommend(snap: Snapshot, customer_id: str, n: int, f: Filters, events: Sequence[RecentEvent] = (),
              consent_when_unknown: bool = True, erased: bool = False, event_boost: float = 0.5
              ) -> tuple[str, list[dict[str, Any]]]:
    """Strategy and items for one customer (the snapshot must hold a recommender)."""
    rec = snap.recommender
    assert rec is not None
    code = None if erased else snap.customer_index.get(customer_id)
    if code is None:
        consent, row = not erased and consent_when_unknown, -1
    else:
        consent, row = snap.consent_bytes[code], code if code < snap.n_rec else -1
    exclude_bought = f.exclude_bought if f.exclude_bought is not None else \
        bool(rec.manifest.get("exclude_bought_default", True))

    if consent and row >= 0 and not events and exclude_bought and f.in_stock_only and f.plain:
        # The storefront's usual call: the first n stored rows are the answer (see serving/compiled.py).
        start = rec.mv_offsets[row]
        if rec.mv_ok_count[row] >= n:
            end = start + n
            ids, reasons = rec.product_ids, rec.reasons
            return PERSONAL, [{"product_id": ids[i], "score": round(score, 6), "reason": reasons[r]}
                              for i, score, r in zip(rec.mv_items[start:end].tolist(),
                                                     rec.mv_scores[start:end].tolist(),
                                                     rec.mv_reasons[start:end].tolist())]

    result = Result()
    if not consent:
        # No profiling: the same popular list for everyone, only the caller's filters apply.
        groups = [("category", f.categories[0])] if len(f.categories) == 1 else []
        _fill_popular(rec, result, n, groups + [("all", "")], f, None)
        return NON_PERSONAL, result.body(rec)

    a = rec.a
    start, end = (rec.mv_offsets[row], rec.mv_offsets[row + 1]) if row >= 0 else (0, 0)
    just_bought, touched = _split_events(rec, events) if events else (set(), [])
    if end > start and not just_bought and not touched:
        items, scores, reasons, bought_before = _ranked(rec, start, end)
        mask = allowed(rec, items, f)
        if exclude_bought:
            mask = ~bought_before if mask is None else mask & ~bought_before
        keep = mask.nonzero()[0][:n] if mask is not None else np.arange(min(n, end - start))
        result.extend(items[keep].tolist(), _rounded(scores[keep]), [rec.reasons[r] for r in reasons[keep].tolist()])
        strategy = PERSONAL
    elif end > start or touched:
        _blend(rec, result, n, f, start, end, touched, just_bought,
               _bought(rec, row) if row >= 0 and exclude_bought else None, event_boost)
        strategy = PERSONAL if end > start else COLD_START
    else:
        strategy = COLD_START
    if len(result.items) < n:
        excluded = set(just_bought)
        if row >= 0 and exclude_bought:
            excluded.update(_bought(rec, row).tolist())
        region_code = int(a["cust_region"][row]) if row >= 0 else -1
        region = rec.regions[region_code] if region_code >= 0 else None
        _fill_popular(rec, result, n, _popular_groups(rec, f, region), f, excluded)
    return strategy, result.body(rec)


def _blend(rec: RecommenderPart, result: Result, n: int, f: Filters, start: int, end: int,
           touched: list[tuple[int, str]], just_bought: set[int], bought: np.ndarray | None,
           event_boost: float) -> None:
    """Personal candidates (scaled to 0..1) plus related items of recent events, re-ranked."""
    cand: dict[int, list[Any]] = {}
    if end > start:
        items, raw, reasons, _ = _ranked(rec, start, end)
        scores = raw.astype(np.float64)
        lo, hi = scores.min(), scores.max()
        base = (scores - lo) / (hi - lo) if hi > lo else np.ones(len(scores))
        for item, b, r in zip(items.tolist(), base.tolist(), reasons.tolist()):
            cand[item] = [b, rec.reasons[r], b]
    for item, (boost, why) in _event_boosts(rec, touched).items():
        add = event_boost * boost
        if item in cand:
            entry = cand[item]
            entry[0] += add
            if add > entry[2]:
                entry[1] = why
        else:
            cand[item] = [add, why, 0.0]
    blocked = set(just_bought)
    if bought is not None:
        blocked.update(bought.tolist())
    keys = np.array([i for i in cand if i not in blocked], dtype=np.int64)
    if not len(keys):
        return
    mask = allowed(rec, keys, f)
    if mask is not None:
        keys = keys[mask]
    ranked = sorted(keys.tolist(), key=lambda i: -cand[i][0])[:n]
    result.extend(ranked, [round(cand[i][0], 6) for i in ranked], [cand[i][1] for i in ranked])


def similar(rec: RecommenderPart, item: int, n: int, f: Filters) -> list[dict[str, Any]]:
    """Products similar to ``item``, filtered, topped up from the popular list of its category."""
    a = rec.a
    s, e = int(a["sim_offsets"][item]), int(a["sim_offsets"][item + 1])
    items = a["sim_items"][s:e]
    mask = allowed(rec, items, f)
    keep = np.flatnonzero(mask)[:n + 1] if mask is not None else np.arange(min(n + 1, e - s))
    keep = keep[items[keep] != item][:n]
    result = Result()
    result.extend(items[keep].tolist(), _rounded(a["sim_scores"][s:e][keep]),
                  [rec.reasons[r] for r in a["sim_reasons"][s:e][keep].tolist()])
    result.seen.add(item)
    category = int(a["prod_category"][item])
    if category >= 0 and len(result.items) < n:
        _fill_popular(rec, result, n, [("category", rec.categories[category])], f, {item})
    return result.body(rec)
