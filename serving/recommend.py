"""Request-time recommendation: the model's policy (:mod:`models.recommenders.policy`) over the memory-mapped lists.

Serving decides nothing of its own: the strategy, consent, filters, top-up and the fold-in of live events are the
policy's, with the settings the model was trained with (the manifest's ``exclude_bought_default`` and
``events``). This module only presents the compiled arrays (:mod:`serving.compiled`) as the policy's lists, and
keeps one shortcut for the storefront's usual call that gives what the policy gives (``tests/test_parity.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from features.i18n import DEFAULT_LOCALE, code_of, render
from models.recommenders import policy
from models.recommenders.filters import Filters
from models.recommenders.policy import EventSettings, ProductTable, Ranked, StoreStock
from serving.compiled import RecommenderPart
from serving.snapshot import Snapshot
from serving.stock import StockFile
from serving.visibility import CustomerView

PERSONAL = policy.PERSONAL


@dataclass(frozen=True)
class RecentEvent:
    """One event of a customer as the journal replays it."""

    ts: float
    event_type: str
    product_id: str


class Texts:
    """Reason texts of a slice of a list, looked up in the model's reason table only when read."""

    __slots__ = ("codes", "table")

    def __init__(self, codes: np.ndarray, table: list[str]):
        self.codes = codes
        self.table = table

    def __getitem__(self, k: int) -> str:
        return self.table[int(self.codes[k])]

    def __len__(self) -> int:
        return len(self.codes)


class ServedLists:
    """The compiled recommender as the policy's :class:`~models.recommenders.policy.Lists`."""

    def __init__(self, rec: RecommenderPart):
        a = rec.a
        self.rec = rec
        stock = None
        if "stock_offsets" in a:
            stock = StoreStock(stores=rec.stock_stores, offsets=a["stock_offsets"], items=a["stock_items"],
                               size=len(rec.product_ids))
        boosts = {c: a["chan_boost"][k] for k, c in enumerate(rec.channels)}
        self.products = ProductTable(in_stock=a["prod_in_stock"], category=a["prod_category"], price=a["prod_price"],
                                     category_index=rec.category_index, categories=rec.categories,
                                     product_codes=lambda ids: np.array([rec.product_index[i] for i in ids
                                                                         if i in rec.product_index], dtype=np.int64),
                                     stock=stock, channel_boost=boosts, new=a.get("prod_new"))
        self.settings = EventSettings.from_dict(rec.manifest.get("events"))
        self.exclude_bought_default = bool(rec.manifest.get("exclude_bought_default", False))
        share = rec.manifest.get("buy_again_share_default")
        self.buy_again_share_default = None if share is None else float(share)
        self.new_arrival_share_default = float(rec.manifest.get("new_arrival_share_default") or 0.0)
        self.any_new = self.products.new is not None and bool(self.products.new.any())

    def popular(self, scope: str, key: str) -> Ranked | None:
        g = self.rec.pop_groups.get((scope, key))
        if g is None:
            return None
        a = self.rec.a
        s, e = int(a["pop_offsets"][g]), int(a["pop_offsets"][g + 1])
        return Ranked(items=a["pop_items"][s:e], scores=a["pop_scores"][s:e],
                      reasons=Texts(a["pop_reasons"][s:e], self.rec.reasons))

    def similar(self, item: int) -> Ranked:
        a = self.rec.a
        if not 0 <= item < len(a["sim_offsets"]) - 1:
            return Ranked(items=np.empty(0, np.int32), scores=np.empty(0, np.float32), reasons=())
        s, e = int(a["sim_offsets"][item]), int(a["sim_offsets"][item + 1])
        return Ranked(items=a["sim_items"][s:e], scores=a["sim_scores"][s:e],
                      reasons=Texts(a["sim_reasons"][s:e], self.rec.reasons))

    def label(self, item: int) -> str:
        return self.rec.product_label(item)

    def ranked(self, row: int) -> Ranked | None:
        """A customer's stored list in rank order (stored with the default-allowed rows first, see
        :mod:`serving.compile`)."""
        rec, a = self.rec, self.rec.a
        start, end = rec.mv_offsets[row], rec.mv_offsets[row + 1]
        if end <= start:
            return None
        order = np.argsort(a["rec_rank"][start:end], kind="stable")
        return Ranked(items=a["rec_items"][start:end][order], scores=a["rec_scores"][start:end][order],
                      reasons=Texts(a["rec_reasons"][start:end][order], rec.reasons),
                      bought=a["rec_bought"][start:end][order])

    def bought(self, row: int) -> np.ndarray:
        a = self.rec.a
        return a["bought_items"][int(a["bought_offsets"][row]):int(a["bought_offsets"][row + 1])]


def lists_of(rec: RecommenderPart, stock: StockFile | None = None) -> ServedLists:
    """The policy's view of a loaded recommender, built once per loaded version; with the data folder's store
    stock (:mod:`serving.stock`) when there is a file."""
    found = rec.__dict__.get("_policy_lists")
    if found is None:
        found = rec.__dict__["_policy_lists"] = ServedLists(rec)
    if stock is None or stock.rows is None:
        return found
    refreshed = copy.copy(found)
    refreshed.products = stock.products(found.products, rec.product_index, rec.__dict__.setdefault("_stock", {}))
    return refreshed


def reason_table(rec: RecommenderPart, locale: str) -> tuple[list[str], list[str | None]]:
    """The model's reason table rendered in ``locale``, and each reason's code: built once per loaded version
    and language, so a request looks texts up by index (the tables hold a few thousand distinct reasons)."""
    tables = rec.__dict__.setdefault("_reason_tables", {})
    found = tables.get(locale)
    if found is None:
        found = tables[locale] = ([render(r, locale) for r in rec.reasons], [code_of(r) for r in rec.reasons])
    return found


def _body(rec: RecommenderPart, picked: policy.Picked, locale: str) -> list[dict[str, Any]]:
    ids = rec.product_ids
    return [{"product_id": ids[i], "score": s, "reason": render(r, locale), "reason_code": code_of(r)}
            for i, s, r in zip(picked.items, picked.scores, picked.reasons)]


def recommend(snap: Snapshot, view: CustomerView, n: int, f: Filters, events: Sequence[RecentEvent] = (),
              locale: str = DEFAULT_LOCALE, stock: StockFile | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Strategy and items for one customer as :func:`serving.visibility.customer_view` sees them (the snapshot
    must hold a recommender), reasons in ``locale``, store stock from ``stock`` when it holds a file."""
    rec = snap.recommender
    assert rec is not None
    lists = lists_of(rec, stock if f.store_id is not None else None)
    code, consent = view.code, view.consent
    row = code if code is not None and code < snap.n_rec else -1
    exclude_bought = f.exclude_bought if f.exclude_bought is not None else lists.exclude_bought_default
    share = f.buy_again_share if f.buy_again_share is not None else lists.buy_again_share_default
    new_share = f.new_arrival_share if f.new_arrival_share is not None else lists.new_arrival_share_default

    if consent and row >= 0 and not events and exclude_bought and f.in_stock_only and f.plain:
        # The storefront's usual call: the first n stored rows are the policy's answer (the rows the default
        # filters allow are stored first, in rank order; see serving/compile.py) when they already hold the new
        # arrivals new_arrival_share keeps (policy.new_arrival_mix leaves such a list as it is).
        start = rec.mv_offsets[row]
        if rec.mv_ok_count[row] >= n and (not new_share or not lists.any_new or _holds_new(rec, start, n, new_share)):
            end = start + n
            ids, (reasons, codes) = rec.product_ids, reason_table(rec, locale)
            return PERSONAL, [{"product_id": ids[i], "score": round(score, 6), "reason": reasons[r],
                               "reason_code": codes[r]}
                              for i, score, r in zip(rec.mv_items[start:end].tolist(),
                                                     rec.mv_scores[start:end].tolist(),
                                                     rec.mv_reasons[start:end].tolist())]

    touched = policy.NOTHING
    if events and consent:
        index = rec.product_index
        touched = policy.events_since([(ev.ts, ev.event_type, index.get(ev.product_id, -1)) for ev in events],
                                      rec.cutoff_ts, lists.settings)
    region = None
    if row >= 0:
        region_code = int(rec.a["cust_region"][row])
        region = rec.regions[region_code] if region_code >= 0 else None
    picked = policy.recommend_one(lists, n, f, exclude_bought, consent=consent,
                                  ranked=lists.ranked(row) if row >= 0 and consent else None,
                                  bought=lists.bought(row) if row >= 0 else None, region=region, touched=touched,
                                  settings=lists.settings, buy_again_share=share, new_arrival_share=new_share)
    return picked.strategy, _body(rec, picked, locale)


def _holds_new(rec: RecommenderPart, start: int, n: int, share: float) -> bool:
    """Whether the first ``n`` stored rows from ``start`` hold the new arrivals ``share`` keeps."""
    return int(rec.a["prod_new"][rec.a["rec_items"][start:start + n]].sum()) >= min(int(round(share * n)), n)


def similar(rec: RecommenderPart, item: int, n: int, f: Filters, locale: str = DEFAULT_LOCALE,
            stock: StockFile | None = None) -> list[dict[str, Any]]:
    """Products similar to ``item``, by the policy, reasons in ``locale``, store stock from ``stock``."""
    lists = lists_of(rec, stock if f.store_id is not None else None)
    return _body(rec, policy.similar_one(lists, item, n, f), locale)
