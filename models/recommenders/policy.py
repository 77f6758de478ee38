"""The recommendation policy: what one customer or one product page is shown, decided in one place.

Every path calls :func:`recommend_one` and :func:`similar_one`: :meth:`Recommender.recommend` (and with it the
evaluation, batch scoring and the registered MLflow model) over the model's in-memory lists, and the API over the
same lists memory-mapped (``serving/recommend.py``). They work on plain arrays: a customer's precomputed ranked
list, the popular lists, the similar-product lists and the product attributes the filters read. The model
decides *what* is in those lists; this module decides how a request turns them into a response, and nothing
else does (``tests/test_parity.py`` compares the model with the HTTP responses for every kind of customer and
filter).

Decisions, each settled on purpose:

- **Strategy.** A customer who refused profiling (or was erased) is ``non_personal``. A customer with a
  precomputed list is ``personal``. Everyone else (unknown, or known without purchases) is ``cold_start``: the
  events they had since the model's cutoff folded in when there are any, otherwise what is popular in their
  region.
- **Consent.** A non-personal list is the overall popular list (the category's when exactly one category is
  asked), never anything derived from the customer's data or events. The caller's filters still apply, and
  ``exclude_bought`` is one of them: the storefront asks for it, it profiles nobody.
- **exclude_bought.** ``None`` takes the model's default (the industry preset's ``recommend.exclude_bought``,
  saved with the model): repeat purchase matters in beauty and grocery, rarely in jewellery.
- **Buy again and explore.** ``buy_again_share`` (the request's, else the model's default from the preset) gives
  that share of a personal list to products bought before and the rest to new ones, each the best of its kind,
  in rank order (:func:`buy_again_mix`); ``None`` keeps the reranker's own mix. Cold-start and non-personal lists
  have no purchase history to mix.
- **New arrivals.** ``new_only`` keeps only products the model counts as new arrivals (launched within its
  ``new_arrival_days``, or never sold), topped up from the overall new-arrivals list. ``new_arrival_share`` (the
  request's, else the model's default from the preset) keeps at least that share of a personal list for the best
  new arrivals the customer's list holds (:func:`new_arrival_mix`); a list that already has them is unchanged,
  and 0 leaves it as ranked.
- **Purchases since the cutoff** (live events) are always left out, whatever ``exclude_bought`` says: the
  customer has just bought the product, its repurchase is not due on the next page. They also count as touched
  products below ("goes with X you bought").
- **Events since the cutoff.** The latest ``max_products`` distinct products the customer touched (newest first)
  boost their similar products, each by the model's interaction weight of the event type (the
  ``interactions.weights`` of ``features.yaml`` the model was trained with) times ``decay`` per older product.
  The personal list, scaled to 0..1, plus ``boost`` times those boosts is re-ranked; the reason of an item is
  the event's when the event contributed more than the list. Products touched but not bought stay eligible.
- **Top-up.** A list that runs short (filters, short history) is topped up from what is popular in the asked
  category (when exactly one is asked), then in the customer's region, then overall; scores never rise down a
  list. Similar products are topped up from the product's category (overall when it has none).
- **Store stock.** With a ``store_id``, the store's shelf is the inventory's (a product it does not list is not
  there; a store the inventory does not list, or a model trained without one, has the catalogue's ``in_stock``).
  ``availability=in_store`` keeps only what is on that shelf, in every list and top-up; ``order_online`` keeps the
  rest too, each marked by its reason (``rec.order_online`` around the reason it had), in rank order: the store
  associate sells what is there and orders the rest. The overall ``in_stock_only`` still applies: what cannot be
  ordered online is not offered for ordering. An in-store list running short is topped up from what is popular on
  that store's shelf (``("store", store_id)``) before the region's and the overall lists.
- **Channel.** With a ``channel``, each list (personal, popular, similar) is scaled to 0..1 and every product's
  channel boost (:func:`channel_boosts`, learned from the channels its buyers used, saved with the model) is added
  before the filters and the top-up: a product bought mostly online sinks in a store list and rises in the app.
  A channel the history never shows, or no channel, changes nothing.
- **Scores** are rounded to six decimals (float32 scores printed as float64 read 0.8999999761581421).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from features.i18n import message
from features.config import InteractionConfig
from models.recommenders.filters import IN_STORE, ORDER_ONLINE, Filters

PERSONAL = "personal"
COLD_START = "cold_start"
NON_PERSONAL = "non_personal"

# How a reason names the touched product that brought an item in, per event type.
EVENT_REASONS = {"purchase": "rec.event_purchase", "cart": "rec.event_cart", "wishlist": "rec.event_wishlist",
                 "try_on": "rec.event_try_on", "view": "rec.event_view"}
_DEFAULT_EVENT_REASON = "rec.event_view"

EVENT_DECAY = 0.85
EVENT_MAX_PRODUCTS = 10
EVENT_BOOST = 0.5

# Channel mix: a product's share of purchases through a channel is shrunk towards the channel's overall share with
# this many pseudo-purchases (a product bought twice says little), its lift over the overall share is taken in
# logs, clipped, and weighted against a list scaled to 0..1. Measured in benchmarks/bench_channels.py.
CHANNEL_PRIOR = 20.0
CHANNEL_CLIP = 2.0
CHANNEL_WEIGHT = 0.15


def channel_boosts(code: np.ndarray, names: Sequence[str], item: np.ndarray, n_products: int,
                   prior: float = CHANNEL_PRIOR, clip: float = CHANNEL_CLIP,
                   weight: float = CHANNEL_WEIGHT) -> np.ndarray:
    """Each product's boost in each channel, from purchase lines.

    ``weight * clip(log(lift))``, ``lift`` = the product's share of purchases through the channel (shrunk towards
    the channel's overall share by ``prior`` pseudo-purchases) over the channel's overall share: positive where
    its buyers use the channel more than buyers at large, negative where less, about 0 where the history says
    nothing.

    Parameters
    ----------
    code
        Channel code of each purchase line (index into ``names``; -1 unknown, left out).
    names
        Channel names.
    item
        Product code of each line.
    n_products
        Products in the catalogue.

    Returns
    -------
    numpy.ndarray
        Boosts, shape (channels, products), float32.
    """
    code = np.asarray(code, dtype=np.int64)
    known = code >= 0
    flat = code[known] * n_products + np.asarray(item, dtype=np.int64)[known]
    counts = np.bincount(flat, minlength=len(names) * n_products).reshape(len(names), n_products).astype(np.float64)
    total = counts.sum()
    if not total:
        return np.zeros((len(names), n_products), dtype=np.float32)
    overall = np.maximum(counts.sum(axis=1) / total, 1e-12)
    share = (counts + prior * overall[:, None]) / (counts.sum(axis=0)[None, :] + prior)
    lift = np.log(share / overall[:, None])
    return (weight * np.clip(lift, -clip, clip)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class StoreStock:
    """What each store has on its shelf: per store, the product codes in stock (sorted), as offsets and items."""

    stores: Sequence[str]
    offsets: np.ndarray
    items: np.ndarray
    size: int  # products in the catalogue
    _index: dict[str, int] = field(default_factory=dict, repr=False)
    _masks: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index.update({str(s): k for k, s in enumerate(self.stores)})

    @classmethod
    def from_rows(cls, stores: np.ndarray, items: np.ndarray, size: int) -> "StoreStock":
        """From rows of (store id, product code on its shelf; -1: not on the shelf, or a product the model does not
        know); a store whose every row is -1 is still listed, with nothing on its shelf."""
        names, code = np.unique(np.asarray(stores, dtype=object).astype(str), return_inverse=True)
        items = np.asarray(items, dtype=np.int64)
        known = items >= 0
        code, items = code[known], items[known].astype(np.int32)
        order = np.lexsort((items, code))
        offsets = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(np.bincount(code, minlength=len(names)), out=offsets[1:])
        return cls(stores=[str(s) for s in names], offsets=offsets, items=items[order], size=size)

    def __contains__(self, store_id: object) -> bool:
        return store_id in self._index

    def mask(self, store_id: str) -> np.ndarray | None:
        """Boolean mask over the products of what ``store_id`` has in stock; None for a store not listed."""
        k = self._index.get(store_id)
        if k is None:
            return None
        found = self._masks.get(k)
        if found is None:
            found = np.zeros(self.size, dtype=bool)
            found[np.asarray(self.items[int(self.offsets[k]):int(self.offsets[k + 1])], dtype=np.int64)] = True
            if len(self._masks) >= 256:  # a few hundred stores at most are asked at once; keep memory bounded
                self._masks.clear()
            self._masks[k] = found
        return found


@dataclass(frozen=True)
class EventSettings:
    """How live events change a list (saved with the model, read by every path).

    Attributes
    ----------
    weights
        Strength of each event type (the model's interaction weights; the features package's defaults when
        none are given); a type without a weight is ignored.
    decay
        Each older touched product counts this much less than the one after it.
    max_products
        Most recent distinct touched products that count.
    boost
        Weight of the events' related products against the personal list (scaled to 0..1).
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(InteractionConfig().weights))
    decay: float = EVENT_DECAY
    max_products: int = EVENT_MAX_PRODUCTS
    boost: float = EVENT_BOOST

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (the serving manifest's ``events``)."""
        return {"weights": {k: float(v) for k, v in self.weights.items()}, "decay": float(self.decay),
                "max_products": int(self.max_products), "boost": float(self.boost)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "EventSettings":
        """Read :meth:`as_dict`'s form; absent keys take the defaults above."""
        values = dict(values or {})
        weights = values.get("weights")
        return cls(weights=dict(weights) if weights is not None else dict(InteractionConfig().weights), decay=float(values.get("decay", EVENT_DECAY)),
                   max_products=int(values.get("max_products", EVENT_MAX_PRODUCTS)),
                   boost=float(values.get("boost", EVENT_BOOST)))


@dataclass(frozen=True)
class ProductTable:
    """Product attributes the filters read, on internal product codes."""

    in_stock: np.ndarray
    category: np.ndarray  # code, -1 unknown
    price: np.ndarray  # NaN unknown
    category_index: Mapping[str, int]
    product_codes: Callable[[Sequence[str]], np.ndarray]  # external ids -> codes (unknown ones left out)
    categories: Sequence[str] = ()  # names by code
    stock: StoreStock | None = None  # store-level stock (the inventory table), None without one
    channel_boost: Mapping[str, np.ndarray] = field(default_factory=dict)  # channel -> boost per product
    new: np.ndarray | None = None  # new arrivals (None: none known)

    @property
    def size(self) -> int:
        return len(self.in_stock)


def shelf(products: ProductTable, store_id: str) -> np.ndarray:
    """Mask over the products of what ``store_id`` has in stock: the inventory's, else the catalogue's in_stock."""
    found = products.stock.mask(store_id) if products.stock is not None else None
    return np.asarray(products.in_stock, dtype=bool) if found is None else found


def allowed(filters: Filters, products: ProductTable, items: np.ndarray) -> np.ndarray:
    """Which of ``items`` (internal codes, -1 for none) the filters let through.

    Parameters
    ----------
    filters
        The caller's filters (``exclude_bought`` is not applied here: it needs the customer).
    products
        Product attributes.
    items
        Product codes, any shape.

    Returns
    -------
    numpy.ndarray of bool, the shape of ``items``
    """
    items = np.asarray(items)
    keep = items >= 0
    codes = np.where(keep, items, 0)
    if filters.in_stock_only:
        keep &= products.in_stock[codes]
    if filters.store_id is not None and filters.availability == IN_STORE:
        keep &= shelf(products, filters.store_id)[codes]
    if filters.categories is not None:
        wanted = [products.category_index[c] for c in filters.categories if c in products.category_index]
        keep &= np.isin(products.category[codes], wanted)
    if filters.exclude_categories:
        unwanted = [products.category_index[c] for c in filters.exclude_categories if c in products.category_index]
        if unwanted:
            keep &= ~np.isin(products.category[codes], unwanted)
    if filters.price_min is not None or filters.price_max is not None:
        price = products.price[codes]
        with np.errstate(invalid="ignore"):
            keep &= np.isfinite(price)
            if filters.price_min is not None:
                keep &= price >= filters.price_min
            if filters.price_max is not None:
                keep &= price <= filters.price_max
    if filters.exclude_products:
        keep &= ~np.isin(items, products.product_codes(filters.exclude_products))
    if filters.new_only:
        keep &= products.new[codes] if products.new is not None else False
    return keep


def is_new(products: ProductTable, items: np.ndarray) -> np.ndarray:
    """Which of ``items`` (internal codes) are new arrivals."""
    items = np.asarray(items, dtype=np.int64)
    if products.new is None:
        return np.zeros(items.shape, dtype=bool)
    return (items >= 0) & products.new[np.maximum(items, 0)]


@dataclass(frozen=True)
class Ranked:
    """A ranked list (a customer's personal list, a popular list or a product's similar list), best first.

    ``reasons[k]`` is the text of place k (any sequence: the API maps codes to a table lazily); ``bought`` says
    whether the customer bought the product before the cutoff (personal lists only).
    """

    items: np.ndarray
    scores: np.ndarray
    reasons: Sequence[str] | None
    bought: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)


def channel_view(ranked: Ranked, products: ProductTable, channel: str | None) -> Ranked:
    """``ranked`` for ``channel``: scaled to 0..1, each product's channel boost added, re-sorted (stable); as it is
    when there is no channel or the model learned no boost for it."""
    boost = products.channel_boost.get(channel) if channel is not None else None
    if boost is None or not len(ranked):
        return ranked
    items = np.asarray(ranked.items)
    scores = np.asarray(ranked.scores, dtype=np.float64)
    lo, hi = scores.min(), scores.max()
    base = (scores - lo) / (hi - lo) if hi > lo else np.ones(len(scores))
    new = base + np.asarray(boost, dtype=np.float64)[np.clip(items, 0, None)] * (items >= 0)
    order = np.argsort(-new, kind="stable")
    reasons = None if ranked.reasons is None else [ranked.reasons[k] for k in order.tolist()]
    return Ranked(items=items[order], scores=new[order], reasons=reasons,
                  bought=None if ranked.bought is None else np.asarray(ranked.bought)[order])


def mark_order_online(out: "Picked", products: ProductTable, filters: Filters) -> None:
    """Mark the items ``filters.store_id`` does not have with the ``order_online`` reason (availability
    ``order_online`` only; ``in_store`` lists hold none)."""
    if filters.store_id is None or filters.availability != ORDER_ONLINE or not out.items:
        return
    on_shelf = shelf(products, filters.store_id)
    for k, item in enumerate(out.items):
        if not on_shelf[item]:
            out.reasons[k] = message("rec.order_online", reason=out.reasons[k])


class Lists(Protocol):
    """The lists a policy reads besides the customer's own: the model's in memory, the API's memory-mapped."""

    products: ProductTable

    def popular(self, scope: str, key: str) -> Ranked | None:
        """Popular list ``scope`` ("all", "region", "category") for ``key`` ("" for "all"); None if none."""

    def similar(self, item: int) -> Ranked:
        """Precomputed similar products of ``item`` (empty for an unknown product)."""

    def label(self, item: int) -> str:
        """How a reason names a product."""


@dataclass(frozen=True)
class Touched:
    """What a customer did since the model's cutoff: products bought, and products touched (newest first)."""

    bought: frozenset[int] = frozenset()
    products: tuple[tuple[int, str], ...] = ()


NOTHING = Touched()


def events_since(events: Iterable[tuple[float | None, str, int]], cutoff_ts: float | None,
                 settings: EventSettings) -> Touched:
    """The events of one customer that count, from ``events`` in arrival order: (epoch seconds or None for
    "since the fit", event type, product code or -1).

    Events before the cutoff are left out (the model saw them); unknown products and event types without a
    weight too.
    """
    bought: set[int] = set()
    touched: list[tuple[int, str]] = []
    seen: set[int] = set()
    # Newest first by the time the event happened (an app syncing late sends older events after newer ones),
    # arrival order among equal times; events without a time count as the newest, in the order given.
    ordered = sorted(events, key=lambda e: float("inf") if e[0] is None else e[0])
    for ts, kind, item in reversed(ordered):
        if item < 0 or (ts is not None and cutoff_ts is not None and ts < cutoff_ts):
            continue
        if kind == "purchase":
            bought.add(item)
        if settings.weights.get(kind, 0.0) > 0 and item not in seen and len(touched) < settings.max_products:
            seen.add(item)
            touched.append((item, kind))
    return Touched(frozenset(bought), tuple(touched))


@dataclass
class Picked:
    """The response for one customer or product: strategy and items (codes), scores, reasons."""

    strategy: str = ""
    items: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, item: int, score: float, reason: str) -> None:
        self.items.append(item)
        self.scores.append(score)
        self.reasons.append(reason)


def _round(value: float) -> float:
    return round(float(value), 6)


def _reason(reasons: Sequence[str] | None, k: int) -> str:
    return reasons[k] if reasons is not None else ""


def recommend_one(lists: Lists, n: int, filters: Filters, exclude_bought: bool, *, consent: bool,
                  ranked: Ranked | None, bought: np.ndarray | None, region: str | None, touched: Touched,
                  settings: EventSettings, buy_again_share: float | None = None,
                  new_arrival_share: float = 0.0) -> Picked:
    """Top-``n`` products for one customer (see the module docstring for every decision).

    Parameters
    ----------
    lists
        Popular and similar lists and product attributes.
    n
        Products wanted.
    filters
        The caller's filters.
    exclude_bought
        Leave out products bought before the cutoff (already resolved from the model's default).
    consent
        Whether the customer may be profiled (False for refused profiling and for erased customers).
    ranked
        The customer's precomputed personal list (None or empty: none).
    bought
        Product codes the customer bought before the cutoff (None: unknown customer).
    region
        The customer's region, for the top-up.
    touched
        Events since the cutoff (:func:`events_since`).
    settings
        The model's event settings.
    buy_again_share
        Share of the list for products bought before (already resolved from the model's default; ``None``: as
        ranked).
    new_arrival_share
        Share of a personal list kept for new arrivals (already resolved from the model's default).

    Returns
    -------
    Picked
    """
    out = Picked()
    share = None if exclude_bought or bought is None else buy_again_share
    products = lists.products
    excluded = set(touched.bought)
    if exclude_bought and bought is not None:
        excluded.update(np.asarray(bought).tolist())
    arrivals = [("new", "")] if filters.new_only else []
    if not consent:
        out.strategy = NON_PERSONAL
        groups = [("category", filters.categories[0])] if filters.categories and len(filters.categories) == 1 else []
        _fill(lists, out, n, arrivals + groups + _store_group(filters) + [("all", "")], filters, excluded)
        mark_order_online(out, products, filters)
        return out
    has_list = ranked is not None and len(ranked) > 0
    if has_list and filters.channel is not None:
        ranked = channel_view(ranked, products, filters.channel)  # type: ignore[arg-type]
    if touched.products:
        _blend(lists, out, n, filters, ranked if has_list else None, touched, excluded, settings,
               bought if share is not None else None, share, new_arrival_share)
    elif has_list:
        assert ranked is not None
        keep = allowed(filters, products, ranked.items)
        if exclude_bought and ranked.bought is not None:
            keep &= ~ranked.bought
        if touched.bought:
            keep &= ~np.isin(ranked.items, list(touched.bought))
        places = np.flatnonzero(keep)
        if share is not None:
            was_bought = ranked.bought[places] if ranked.bought is not None else np.isin(ranked.items[places], bought)
            places = places[buy_again_mix(was_bought, n, share, is_new(products, ranked.items[places]),
                                          new_arrival_share)]
        elif new_arrival_share:
            places = places[new_arrival_mix(is_new(products, ranked.items[places]), n, new_arrival_share)]
        for k in places[:n].tolist():
            out.add(int(ranked.items[k]), _round(ranked.scores[k]), _reason(ranked.reasons, k))
    out.strategy = PERSONAL if has_list else COLD_START
    if len(out.items) < n:
        groups = [("category", filters.categories[0])] if filters.categories and len(filters.categories) == 1 else []
        groups += _store_group(filters)
        if region:
            groups.append(("region", region))
        _fill(lists, out, n, arrivals + groups + [("all", "")], filters, excluded)
    mark_order_online(out, products, filters)
    return out


def similar_one(lists: Lists, item: int, n: int, filters: Filters) -> Picked:
    """Products similar to ``item`` (a product page's "you may also like"), filtered, topped up from what is
    popular in its category (overall when it has none); the product itself never."""
    out = Picked()
    products = lists.products
    similar = channel_view(lists.similar(item), products, filters.channel)
    keep = allowed(filters, products, similar.items) & (similar.items != item)
    for k in np.flatnonzero(keep)[:n].tolist():
        out.add(int(similar.items[k]), _round(similar.scores[k]), _reason(similar.reasons, k))
    if len(out.items) < n:
        category = int(products.category[item]) if 0 <= item < products.size else -1
        name = _category_name(products, category)
        group = [("category", name)] if name is not None else [("all", "")]
        _fill(lists, out, n, group + _store_group(filters), filters, {item})
    mark_order_online(out, products, filters)
    return out


def _store_group(filters: Filters) -> list[tuple[str, str]]:
    """The store's popular list, for an in-store list's top-up."""
    return [("store", filters.store_id)] if filters.store_id is not None and filters.availability == IN_STORE else []


def _category_name(products: ProductTable, code: int) -> str | None:
    return str(products.categories[code]) if 0 <= code < len(products.categories) else None


def _fill(lists: Lists, out: Picked, n: int, groups: list[tuple[str, str]], filters: Filters,
          excluded: set[int]) -> None:
    """Top ``out`` up to ``n`` from popular lists, in the order of ``groups``; scores never rise."""
    seen = set(out.items) | excluded
    for scope, key in groups:
        if len(out.items) >= n:
            return
        popular = lists.popular(scope, key)
        if popular is None or not len(popular):
            continue
        popular = channel_view(popular, lists.products, filters.channel)
        keep = allowed(filters, lists.products, popular.items)
        floor = out.scores[-1] if out.scores else None
        for k in np.flatnonzero(keep).tolist():
            item = int(popular.items[k])
            if item in seen:
                continue
            score = _round(popular.scores[k])
            if floor is not None and score > floor:
                score = floor
            out.add(item, score, _reason(popular.reasons, k))
            seen.add(item)
            floor = score
            if len(out.items) >= n:
                return


def _boosts(lists: Lists, touched: Touched, settings: EventSettings) -> dict[int, tuple[float, str]]:
    """Related products of the touched ones: product -> (boost, reason of the strongest contribution)."""
    acc: dict[int, float] = {}
    best: dict[int, tuple[float, str]] = {}
    for order, (item, kind) in enumerate(touched.products):
        weight = settings.weights.get(kind, 0.0) * settings.decay ** order
        similar = lists.similar(item)
        if not len(similar):
            continue
        scores = np.asarray(similar.scores, dtype=np.float64)
        top = scores.max()
        # Scaled so each touched product gives its best match 1; rank order where scores say nothing.
        norm = scores / top if top > 0 else 1.0 / (1.0 + np.arange(len(scores)))
        reason = message(EVENT_REASONS.get(kind, _DEFAULT_EVENT_REASON), product=lists.label(item))
        for q, v in zip(np.asarray(similar.items).tolist(), norm.tolist()):
            if q == item:
                continue
            b = weight * v
            acc[q] = acc.get(q, 0.0) + b
            if b > best.get(q, (0.0, ""))[0]:
                best[q] = (b, reason)
    return {q: (v, best[q][1]) for q, v in acc.items() if q in best}


def new_arrival_mix(new: np.ndarray, n: int, share: float) -> np.ndarray:
    """Positions (in rank order) of the top-``n`` list that keeps at least ``round(share * n)`` places for new
    arrivals: the best ones of the candidates, the other places in rank order.

    Parameters
    ----------
    new
        Whether each candidate, best first, is a new arrival.
    n
        Length of the list.
    share
        Share of the places kept for new arrivals (0..1); fewer when the candidates hold fewer.

    Returns
    -------
    numpy.ndarray of int
        Indices into ``new``, ascending; the plain top ``n`` when it already holds enough new arrivals.
    """
    new = np.asarray(new, dtype=bool)
    kept = np.flatnonzero(new)[:min(int(round(share * n)), n)]
    others = np.setdiff1d(np.arange(len(new)), kept, assume_unique=True)[:max(n - len(kept), 0)]
    return np.sort(np.concatenate([kept, others]))


def buy_again_mix(bought: np.ndarray, n: int, share: float, new: np.ndarray | None = None,
                  new_share: float = 0.0) -> np.ndarray:
    """Positions (in rank order) of the top-``n`` list that gives ``round(share * n)`` places to products bought
    before and the rest to new ones.

    Parameters
    ----------
    bought
        Whether each candidate, best first, was bought before.
    n
        Length of the list.
    share
        Share of the places for bought products (0..1).
    new, new_share
        Which candidates are new arrivals, and the share of the places to keep for them among the products not
        bought before (:func:`new_arrival_mix`).

    Returns
    -------
    numpy.ndarray of int
        Indices into ``bought``, ascending (rank order kept); when one kind has too few candidates the other
        fills the places.
    """
    bought = np.asarray(bought, dtype=bool)
    old, fresh = np.flatnonzero(bought), np.flatnonzero(~bought)
    want_old = min(int(round(share * n)), len(old))
    take_new = min(n - want_old, len(fresh))
    take_old = min(n - take_new, len(old))
    if new is not None and new_share:
        # The new arrivals' places come out of the share of products not bought before.
        fresh = fresh[new_arrival_mix(np.asarray(new, dtype=bool)[fresh], take_new,
                                      new_share * n / max(take_new, 1))]
    return np.sort(np.concatenate([old[:take_old], fresh[:take_new]]))


def _blend(lists: Lists, out: Picked, n: int, filters: Filters, ranked: Ranked | None, touched: Touched,
           excluded: set[int], settings: EventSettings, bought: np.ndarray | None = None,
           share: float | None = None, new_share: float = 0.0) -> None:
    """The personal list (scaled to 0..1) plus the boosts of recent events, re-ranked (mixed by
    :func:`buy_again_mix` when ``share`` is given, ``bought`` the customer's earlier purchases)."""
    candidates: dict[int, list[Any]] = {}  # item -> [score, reason, the list's own part]
    if ranked is not None:
        scores = np.asarray(ranked.scores, dtype=np.float64)
        lo, hi = scores.min(), scores.max()
        base = (scores - lo) / (hi - lo) if hi > lo else np.ones(len(scores))
        for k, (item, b) in enumerate(zip(np.asarray(ranked.items).tolist(), base.tolist())):
            candidates[item] = [b, _reason(ranked.reasons, k), b]
    for item, (boost, why) in _boosts(lists, touched, settings).items():
        add = settings.boost * boost
        entry = candidates.get(item)
        if entry is None:
            candidates[item] = [add, why, 0.0]
        else:
            entry[0] += add
            if add > entry[2]:
                entry[1] = why
    keys = np.array([i for i in candidates if i not in excluded], dtype=np.int64)
    if not len(keys):
        return
    keys = keys[allowed(filters, lists.products, keys)]
    best = np.array(sorted(keys.tolist(), key=lambda i: -candidates[i][0]), dtype=np.int64)
    if share is not None and bought is not None:
        best = best[buy_again_mix(np.isin(best, bought), n, share, is_new(lists.products, best), new_share)]
    elif new_share and ranked is not None:
        best = best[new_arrival_mix(is_new(lists.products, best), n, new_share)]
    for item in best[:n].tolist():
        out.add(item, _round(candidates[item][0]), candidates[item][1])
