"""Synthetic retail data in canonical form, with the structure churn and recommendation models learn from."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.columns import Columns as C
from features.columns import EventTypes, Tables
from features.exceptions import ConfigError
from features.linking import DEFAULT_MAX_IDS_PER_KEY
from features.presets import load_preset

#: Channel value of purchases made in a physical store; only these carry a ``store_id``.
STORE_CHANNEL = "store"

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_HOUR = 3_600
_SECONDS_PER_MINUTE = 60
_MINUTES_PER_DAY = 1_440
_DAYS_PER_YEAR = 365.25
_NS_PER_SECOND = 1_000_000_000
_CURRENCY_DECIMALS = 2
# Keep draws strictly inside a cumulative-distribution block: ``group + u`` must stay below ``group + 1``.
_UNIT_BELOW_ONE = 1.0 - 1e-9
# Event types stacked from the first sign of interest to the last step before paying (EventTypes.ALL order).
_INTENT_ORDER = (EventTypes.view, EventTypes.wishlist, EventTypes.try_on, EventTypes.cart)
# A price more than this many category price-sigmas below (above) the category median is entry (premium).
_PRICE_BAND_Z = 0.43
# Words naming the collections (product lines) of the synthetic brands.
_COLLECTION_WORDS = (
    "aurora", "lotus", "meridian", "solstice", "ember", "celeste", "nova", "willow", "harbor", "sable", "iris",
    "zephyr", "coral", "opaline", "juniper", "atlas", "linden", "marigold", "onyx", "saffron", "tidal", "velvet",
    "amber", "bloom", "cascade", "dune", "echo", "fable", "glacier", "haven", "ivy", "jade", "kestrel", "lumen",
    "mosaic", "nectar", "orchid", "prism", "quartz", "ripple", "sierra", "thistle", "umbra", "vale", "wren",
)
_ID_PREFIX = {"customer": "C", "product": "P", "order": "O", "store": "S"}
# Eight-byte ids (prefix + 7 digits) gather as one uint64 per row; more digits are used when counts need them.
_ID_MIN_WIDTH = {"customer": 7, "product": 7, "order": 7, "store": 4}


@dataclass(frozen=True)
class Simulation:
    """Tables drawn by the generator together with the latent truth they were drawn from.

    Attributes
    ----------
    tables
        Canonical tables keyed by name: ``transactions``, ``customers``, ``products``, ``events``, ``feedback``,
        ``campaigns`` (past win-back campaigns with random holdouts, :mod:`features.campaign_sim`).
    truth
        One row per customer: taste segment, purchase rate, dropout hazard, latent satisfaction, when the
        customer became active, ``dropout_at`` (the first day they can no longer buy; NaT when they are still
        alive at the end of the calendar), number of regimen products, preferred channel and home store.
        Never feed it to a model: it is the answer key for tests and benchmarks.
    stores
        ``store_id`` and ``region`` of every store.
    calendar
        One row per calendar day: ``date``, ``trip_intensity`` (weekly x annual seasonality x promotions,
        mean 1), ``gift_intensity`` (occasion pull, mean 1, 0 away from occasions) and ``discount_prob``.
    """

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    stores: pd.DataFrame
    calendar: pd.DataFrame
    # Per campaign exposure: response type, true uplift and both potential outcomes (features.campaign_sim).
    campaign_truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Planted recurring occasions: one row per planted purchase (customer_id, occasion, occasion_date,
    # timestamp, product_id), the answer key of moment detection (models/moments).
    occasion_truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    # One row per product: product_id, launched_in_calendar, log_popularity (the log of its popularity factor in
    # every customer's sampling weights, before taste), the answer key of the new-products path.
    product_truth: pd.DataFrame = field(default_factory=pd.DataFrame)


def generate(preset: str | dict, customers: int, seed: int) -> dict[str, pd.DataFrame]:
    """Draw a synthetic retail dataset in canonical form.

    Parameters
    ----------
    preset
        A preset name for :func:`features.presets.load_preset` (``jewellery``, ``beauty``, ``grocery``) or an
        already loaded preset mapping; its ``generator`` section holds every parameter.
    customers
        Number of customers to draw (products and stores come from the preset and do not scale with it).
    seed
        Seed of all randomness (numpy Generators derived from it, one per stage): the same preset, customers
        and seed give identical tables, whatever the machine or the number of threads.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``transactions``, ``customers``, ``products``, ``events``, ``feedback`` and ``campaigns`` in canonical form
        (string ids, tz-naive ``datetime64[ns]`` timestamps, ``float64`` numbers, nullable ``boolean`` and
        ``Int64``), see :mod:`features.schema`.

    Raises
    ------
    ConfigError
        The preset does not exist, lacks a ``generator`` section, or a parameter is missing or out of range;
        ``customers`` is not a positive integer.
    """
    return simulate(preset, customers, seed).tables


def simulate(preset: str | dict, customers: int, seed: int) -> Simulation:
    """Draw a synthetic dataset and keep the latent truth behind it (for tests and benchmarks).

    Parameters
    ----------
    preset, customers, seed
        As for :func:`generate`.

    Returns
    -------
    Simulation
        The canonical tables plus per-customer truth, the store list and the calendar intensities.

    Raises
    ------
    ConfigError
        As for :func:`generate`.
    """
    return _simulator(preset, customers, seed).run()


def purchase_redraws(preset: str | dict, customers: int, seed: int, redraws: int, start: pd.Timestamp,
                     end: pd.Timestamp, realised: bool = False) -> Iterator[pd.DataFrame]:
    """The purchases of ``[start, end)`` drawn again, ``redraws`` times, in the world of :func:`simulate`.

    Every redraw keeps what the generator drew about the catalogue and the customers (tastes, purchase rates,
    lifetimes, favourites, regimens and their schedules, online-only products) and draws again what happens day
    to day (trips, what is in each basket, gifts, the jitter of each re-buy), with this module's own code. The
    share of redraws in which a customer bought a product is the probability of that purchase given the latent
    world: the answer key of a ranking's ceiling. Purchases the later stages add to the tables (planted
    occasions, campaign responses) are not redrawn.

    Parameters
    ----------
    preset, customers, seed
        As for :func:`simulate`: the same arguments give the same latent world.
    redraws
        Number of redraws (each one draws the whole calendar's trips and baskets again).
    start, end
        The window whose purchases are yielded.
    realised
        First yield the window's purchases as :func:`simulate` drew them (before the later stages), then the
        redraws: what the realised log owes to the stages that are not redrawn.

    Yields
    ------
    pandas.DataFrame
        ``customer_id``, ``product_id``: the distinct pairs bought in the window in one redraw.
    """
    sim = _simulator(preset, customers, seed)
    sim._calendar()
    sim._catalog()
    sim._customers()
    sim._orders()  # with the seed's own streams: the regimens drawn here are held for every redraw
    sim._channel_catalog()
    lo, hi = ((pd.Timestamp(t) - sim.start) // pd.Timedelta(seconds=1) for t in (start, end))
    cust_ids, prod_ids = _Ids("customer", sim.n), _Ids("product", sim.n_products)
    for r in range(-1 if realised else 0, redraws):
        if r >= 0:
            streams = np.random.SeedSequence([seed, r + 1]).spawn(3)
            sim.rngs.update(zip(("orders", "lines", "stock"), map(np.random.default_rng, streams)))
            sim._orders()
        sim._lines()
        inside = (sim.line_sec >= lo) & (sim.line_sec < hi)
        pair = np.unique(sim.line_owner[inside] * sim.n_products + sim.line_prod[inside])
        yield pd.DataFrame({C.customer_id: cust_ids.take(pair // sim.n_products),
                            C.product_id: prod_ids.take(pair % sim.n_products)})


def _simulator(preset: str | dict, customers: int, seed: int) -> _Simulator:
    if isinstance(customers, bool) or not isinstance(customers, (int, np.integer)) or customers < 1:
        raise ConfigError(f"customers must be a positive integer, got {customers!r}")
    data = load_preset(preset) if isinstance(preset, (str, Path)) else preset
    if not isinstance(data, dict) or not isinstance(data.get("generator"), dict):
        name = data.get("name", "?") if isinstance(data, dict) else "?"
        raise ConfigError(f"preset '{name}': section 'generator' is missing")
    return _Simulator(_Section(data["generator"], "generator"), int(customers), seed)


def write_tables(tables: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Write each table to ``<out_dir>/<table>.parquet``.

    Parameters
    ----------
    tables
        Tables keyed by name, as returned by :func:`generate`.
    out_dir
        Folder to write into; created when missing.

    Returns
    -------
    list of pathlib.Path
        The written files, canonical tables first in :attr:`Tables.ALL` order, then any other table.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [t for t in Tables.ALL if t in tables] + [t for t in tables if t not in Tables.ALL]
    paths = [out_dir / f"{name}.parquet" for name in names]

    def write(name: str, path: Path) -> None:
        pq.write_table(pa.Table.from_pandas(tables[name], preserve_index=False), path)

    # Arrow encodes and compresses without the GIL: tables are written side by side, one per core.
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        list(pool.map(write, names, paths))
    return paths


# --------------------------------------------------------------------------------------------- parameters


class _Section:
    """Read-only view of a preset section whose errors name the dotted key path."""

    def __init__(self, data: Any, path: str):
        self._data = data
        self._path = path

    def __contains__(self, key: str) -> bool:
        return isinstance(self._data, dict) and key in self._data

    def _wrap(self, key: Any, value: Any) -> Any:
        return _Section(value, f"{self._path}.{key}") if isinstance(value, dict) else value

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise ConfigError(f"preset: '{self._path}.{key}' is missing")
        return self._wrap(key, self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self) -> list[tuple[Any, Any]]:
        return [(k, self._wrap(k, v)) for k, v in self._data.items()]

    def number(self, key: str, low: float | None = None, high: float | None = None,
               default: float | None = None) -> float:
        value = self.get(key, default) if default is not None else self[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"preset: '{self._path}.{key}' must be a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"preset: '{self._path}.{key}' = {value} is outside [{low}, {high}]")
        return float(value)

    def prob(self, key: str, default: float | None = None) -> float:
        return self.number(key, 0.0, 1.0, default)

    def count(self, key: str, low: int = 1) -> int:
        value = self.number(key, low)
        if value != int(value):
            raise ConfigError(f"preset: '{self._path}.{key}' must be a whole number, got {value}")
        return int(value)

    def vector(self, key: str, length: int) -> np.ndarray:
        value = self[key]
        arr = np.asarray(value, dtype=float) if isinstance(value, list) else np.empty(0)
        if arr.shape != (length,) or (arr < 0).any() or arr.sum() <= 0:
            raise ConfigError(f"preset: '{self._path}.{key}' must be {length} non-negative numbers")
        return arr

    def shares(self, key: str) -> tuple[list[str], np.ndarray]:
        """Names and normalised weights of a ``name: weight`` mapping (or ``name: {share: w, ...}``)."""
        section = self[key]
        if not isinstance(section, _Section) or not section.items():
            raise ConfigError(f"preset: '{self._path}.{key}' must map names to shares")
        names, weights = [], []
        for name, value in section.items():
            w = value.number("share", 0.0) if isinstance(value, _Section) else section.number(name, 0.0)
            names.append(str(name))
            weights.append(w)
        weights = np.asarray(weights)
        if weights.sum() <= 0:
            raise ConfigError(f"preset: '{self._path}.{key}' shares sum to zero")
        return names, weights / weights.sum()


def _occurrences(spec: _Section, first_year: int, last_year: int) -> list[pd.Timestamp]:
    """Dates of a yearly occasion or promotion: ``month_day: "MM-DD"`` every year, or explicit ``dates``."""
    try:
        if "dates" in spec:
            return [pd.Timestamp(d) for d in spec["dates"]]
        md = str(spec["month_day"])
        return [pd.Timestamp(f"{y}-{md}") for y in range(first_year, last_year + 1)]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"preset: '{spec._path}' has a bad date ({exc})") from None


# ------------------------------------------------------------------------------------------ id formatting


class _Ids:
    """Fixed-width string ids (``prefix`` + zero-padded number) of one kind of entity.

    Each id is formatted once per entity; table columns then gather whole fixed-width rows with integer
    views of the byte matrix, which is an order of magnitude faster than formatting or an Arrow ``take``
    of strings per row (it dominates the generator's run time otherwise).
    """

    def __init__(self, kind: str, count: int):
        prefix = np.frombuffer(_ID_PREFIX[kind].encode(), dtype=np.uint8)
        digits = max(_ID_MIN_WIDTH[kind], len(str(max(count, 1))))
        self.width = w = prefix.size + digits
        self.matrix = np.empty((count, w), dtype=np.uint8)
        self.matrix[:, : prefix.size] = prefix
        # uint32 division is several times faster than int64 and covers every realistic count.
        rest = np.arange(1, count + 1, dtype=np.uint32 if count < 2**32 else np.uint64)
        for k in range(w - 1, prefix.size - 1, -1):
            quotient = rest // 10
            self.matrix[:, k] = rest - quotient * 10 + ord("0")
            rest = quotient
        # Split each row into 8/4/2/1-byte pieces that numpy gathers as single integers.
        self.pieces, pos = [], 0
        for size, dtype in ((8, np.uint64), (4, np.uint32), (2, np.uint16), (1, np.uint8)):
            while w - pos >= size:
                piece = np.ascontiguousarray(self.matrix[:, pos: pos + size]).view(dtype).ravel()
                self.pieces.append((pos, size, piece))
                pos += size

    def all(self) -> pd.arrays.ArrowStringArray:
        return self.take(np.arange(self.matrix.shape[0]))

    def take(self, index: np.ndarray, valid: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
        """Ids of entities ``index`` (0-based) as a pandas ``str`` array; null where ``valid`` is False."""
        n, w = index.size, self.width
        if len(self.pieces) == 1:
            data = self.pieces[0][2][index]
        else:
            data = np.empty((n, w), dtype=np.uint8)
            for pos, size, piece in self.pieces:
                data[:, pos: pos + size] = piece[index].view(np.uint8).reshape(n, size)
        # large_string is what pandas' ``str`` dtype holds: no conversion when wrapping it.
        offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
        bitmap, nulls = None, 0
        if valid is not None:
            bitmap, nulls = pa.py_buffer(np.packbits(valid, bitorder="little")), int(n - valid.sum())
        buffers = [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)]
        arr = pa.Array.from_buffers(pa.large_string(), n, buffers, null_count=nulls)
        return pd.array(arr, dtype="str")


def _sort_index(key: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative integer keys.

    Packs ``key`` and the row number into one int64 and sorts values, not indices: numpy's SIMD value sort is
    5-8x faster than ``argsort`` on millions of rows. Falls back to ``argsort`` when the bits do not fit.
    """
    n = key.size
    bits = max(int(n - 1).bit_length(), 1)
    if n == 0 or int(key.max()) >= 1 << (63 - bits):
        return np.argsort(key, kind="stable")
    packed = (key.astype(np.int64) << bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << bits) - 1)


def _labels(names: list[str], codes: np.ndarray, valid: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
    """Strings ``names[codes]`` (null where ``valid`` is False) as a pandas ``str`` array."""
    idx = pa.array(codes, mask=None if valid is None else ~valid)
    return pd.array(pc.take(pa.array(names, type=pa.large_string()), idx), dtype="str")


def _bool(values: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool), np.zeros(len(values), dtype=bool))


# --------------------------------------------------------------------------------------------- sampling


class _Sampler:
    """Categorical draws over products, one distribution per group, all answered by one ``searchsorted``.

    Row ``r`` of ``weights`` is a distribution over products. With ``blocks`` (each product's category,
    products sorted by it) every row is split into one distribution per category, so a basket can add a
    product from the same category under the same taste. Group ids are ``row`` or ``row * n_blocks + block``.
    """

    def __init__(self, weights: np.ndarray, blocks: np.ndarray | None = None):
        rows, self.n = weights.shape
        blocks = np.zeros(self.n, dtype=np.int64) if blocks is None else blocks
        self.n_blocks = int(blocks.max()) + 1
        cdf = np.empty_like(weights, dtype=float)
        for b in range(self.n_blocks):
            cols = np.flatnonzero(blocks == b)
            cs = np.cumsum(weights[:, cols], axis=1)
            total = cs[:, -1:]
            uniform = np.arange(1, cols.size + 1) / cols.size
            # A block with no weight is never asked for; give it a valid uniform cdf rather than NaNs.
            cdf[:, cols] = np.where(total > 0, cs / np.where(total > 0, total, 1.0), uniform)
            cdf[:, cols[-1]] = 1.0
        group_of = np.arange(rows)[:, None] * self.n_blocks + blocks[None, :]
        self.flat = (cdf + group_of).ravel()

    def draw(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = np.minimum(rng.random(groups.size), _UNIT_BELOW_ONE)
        flat_idx = np.searchsorted(self.flat, groups + u, side="right")
        return flat_idx % self.n


def _cum_at(cum: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cumulative intensity at (fractional) day ``t`` of a piecewise-constant daily intensity."""
    d = np.clip(np.floor(t).astype(np.int64), 0, cum.size - 2)
    return cum[d] + (cum[d + 1] - cum[d]) * (t - d)


def _poisson_times(rng: np.random.Generator, cum: np.ndarray, rate: np.ndarray, lo: np.ndarray,
                   hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inhomogeneous Poisson process per owner: ``rate[i] * intensity(t)`` on ``[lo[i], hi[i])``.

    Drawn exactly by inverting the cumulative intensity (no thinning, so no wasted draws); returns the
    owner of every point (sorted) and its time in days since the calendar start.
    """
    c_lo = _cum_at(cum, lo)
    mass = np.maximum(_cum_at(cum, hi) - c_lo, 0.0)
    n = rng.poisson(rate * mass)
    owner = np.repeat(np.arange(rate.size), n)
    t = _inverse_cum(cum, c_lo[owner] + rng.random(owner.size) * mass[owner])
    return owner, np.clip(t, lo[owner], np.nextafter(hi[owner], -np.inf))


def _inverse_cum(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Day ``t`` at which the cumulative intensity reaches ``u`` (inverse of :func:`_cum_at`)."""
    d = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, cum.size - 2)
    width = np.maximum(cum[d + 1] - cum[d], np.finfo(float).tiny)
    return d + np.clip((u - cum[d]) / width, 0.0, _UNIT_BELOW_ONE)


def _unique_rows(sec: np.ndarray, *cols: np.ndarray) -> np.ndarray:
    """Positions of rows that do not repeat an earlier row exactly, for rows sorted by ``sec``.

    Only rows sharing their second with a neighbour can repeat one, so only those few are sorted; the
    validator rejects exact repeats in tables without a key, and a generated log should need no rejects.
    """
    tie = np.zeros(sec.size, dtype=bool)
    tie[1:] = sec[1:] == sec[:-1]
    tie[:-1] |= tie[1:].copy()
    cand = np.flatnonzero(tie)
    if cand.size == 0:
        return np.arange(sec.size)
    order = cand[np.lexsort([c[cand] for c in reversed(cols)] + [sec[cand]])]
    same = np.ones(order.size - 1, dtype=bool)
    for c in (sec, *cols):
        same &= c[order[1:]] == c[order[:-1]]
    keep = np.ones(sec.size, dtype=bool)
    keep[order[1:][same]] = False
    return np.flatnonzero(keep)


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    raw = shares * total
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(counts - raw, kind="stable")[: total - counts.sum()]] += 1
    return counts


# ------------------------------------------------------------------------------------------- simulator


class _Simulator:
    """One run of the generator; stages run in order and share the drawn arrays through ``self``.

    Every stage draws from its own stream spawned from the seed, so a change to one stage's parameters leaves
    the others' draws alone, and stages that only read earlier results can run side by side deterministically.
    """

    # New stages go last: each stage's stream is the seed's child at its position, so earlier draws stay put.
    _STAGES = ("catalog", "customers", "orders", "lines", "returns", "events", "feedback", "campaigns", "moments",
               "stock", "launches")

    def __init__(self, g: _Section, n: int, seed: int):
        self.g, self.n = g, n
        streams = np.random.SeedSequence(seed).spawn(len(self._STAGES))
        self.rngs = {stage: np.random.default_rng(s) for stage, s in zip(self._STAGES, streams)}
        self.regimen: tuple[np.ndarray, ...] | None = None  # (customer, product, cycle, first slot) per regimen

    def run(self) -> Simulation:
        self._calendar()
        self._catalog()
        self._customers()
        self._orders()
        self._channel_catalog()
        self._lines()
        self.cust_ids = _Ids("customer", self.n)
        self.prod_ids = _Ids("product", self.n_products)
        self.store_ids = _Ids("store", self.n_stores)
        # Events and the purchase-side tables only read what the stages above left; numpy and Arrow release
        # the GIL, so the two halves use both cores of a small machine.
        with ThreadPoolExecutor(max_workers=1) as pool:  # one helper thread beside this one
            events = pool.submit(self._events_table)
            self._returns()
            self._feedback()
            tables = {Tables.transactions: self._transactions_table(), **self._profile_tables(),
                      Tables.events: events.result(), Tables.feedback: self._feedback_table()}
        tables, occasion_truth = self._moments(tables)
        tables, campaign_truth = self._campaigns(tables)
        inventory = self._inventory_table()
        if inventory is not None:
            tables[Tables.inventory] = inventory
        return Simulation(tables={t: tables[t] for t in Tables.ALL if t in tables}, truth=self._truth(), stores=self._stores(),
                          calendar=self._calendar_table(), campaign_truth=campaign_truth,
                          occasion_truth=occasion_truth, product_truth=self._product_truth())

    # -- moments: birthdays, and recurring occasions planted for some customers (generator.moments)

    def _moments(self, tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        """Birth dates for ``birthdays.known`` of the customers; for ``occasions.share`` of those active over two
        years or more, a personal occasion (an anniversary on a random day, or a named one of
        ``generator.occasions.dates``) bought for in the ``lead_days`` before it, each year with probability
        ``keep``, from one gift category per customer."""
        rng, n = self.rngs["moments"], self.n
        spec = self.g.get("moments") or _Section({}, "generator.moments")
        known = rng.random(n) < (spec["birthdays"].prob("known") if "birthdays" in spec else 0.0)
        day = rng.integers(0, 366, n)
        month_day = (pd.Timestamp("2000-01-01") + pd.to_timedelta(day, unit="D")).strftime("%m-%d")
        customers = tables[Tables.customers]
        customers[C.birth_date] = pd.array(np.where(known, np.asarray(month_day, dtype=object), None), dtype="str")
        empty = pd.DataFrame({C.customer_id: pd.Series(dtype="str"), "occasion": pd.Series(dtype="str"),
                              "occasion_date": pd.Series(dtype="datetime64[ns]"),
                              C.timestamp: pd.Series(dtype="datetime64[ns]"), C.product_id: pd.Series(dtype="str")})
        if "occasions" not in spec:
            return tables, empty
        occ = spec["occasions"]
        kinds, kind_p = occ.shares("kinds")
        lead, keep = occ.count("lead_days", 0), occ.prob("keep")
        gift_categories = [self.cat_names.index(c) for c in occ["categories"]]
        long_enough = (self.hi - self.active_from) >= 2 * _DAYS_PER_YEAR
        owners = np.flatnonzero(long_enough & (rng.random(n) < occ.prob("share")))
        kind = rng.choice(len(kinds), size=owners.size, p=kind_p)
        anniversary = rng.integers(0, 366, owners.size)
        category = np.asarray(gift_categories)[rng.integers(0, len(gift_categories), owners.size)]
        years = np.arange(self.dates[0].year - 1, self.dates[-1].year + 1)
        # Day (from the calendar start) of each owner's occasion in each year; NaN where a named one has no date.
        occasion = np.full((owners.size, years.size), np.nan)
        for k, name in enumerate(kinds):
            rows = np.flatnonzero(kind == k)
            if name == "anniversary":
                md = (pd.Timestamp("2000-01-01") + pd.to_timedelta(anniversary[rows], unit="D")).strftime("-%m-%d")
                for j, year in enumerate(years.tolist()):
                    dates = pd.to_datetime(str(year) + pd.Index(md).str.replace("-02-29", "-02-28"))
                    occasion[rows, j] = (dates - self.start).days
            else:
                by_year = {d.year: (d - self.start).days for d in _occurrences(self.g["occasions"]["dates"][name],
                                                                                int(years[0]), int(years[-1]))}
                occasion[rows] = [by_year.get(int(y), np.nan) for y in years]
        bought = occasion - rng.integers(0, lead + 1, occasion.shape)
        owner_grid = np.broadcast_to(owners[:, None], occasion.shape)
        planted = ((bought >= self.active_from[owner_grid]) & (bought < self.hi[owner_grid])
                   & (rng.random(occasion.shape) < keep))
        if not planted.any():
            return tables, empty
        row, col = np.nonzero(planted)
        owner_a, name_a = owners[row], np.asarray(kinds, dtype=object)[kind[row]]
        date_a = self.start + pd.to_timedelta(occasion[row, col], unit="D")
        day_a, cat_a = bought[row, col].astype(np.int64), category[row]
        products = np.concatenate([np.flatnonzero(self.cat == c)[
            rng.integers(0, int((self.cat == c).sum()), int((cat_a == c).sum()))] for c in np.unique(cat_a)])
        products = products[np.argsort(np.argsort(cat_a, kind="stable"), kind="stable")]
        # Nothing is bought before its launch: a product not on sale yet gives way to an established one.
        late = np.flatnonzero(self.launch_day[products] > day_a)
        for c in np.unique(cat_a[late]):
            rows = late[cat_a[late] == c]
            established = np.flatnonzero((self.cat == c) & (self.launch_day <= 0))
            if established.size:
                products[rows] = established[rng.integers(0, established.size, rows.size)]
        sec = day_a.astype(np.int64) * _SECONDS_PER_DAY + rng.integers(11, 20, day_a.size) * _SECONDS_PER_HOUR
        chan = self.pref_channel[owner_a]
        tx = tables[Tables.transactions]
        orders = _Ids("order", int(tx[C.order_id].nunique()) + day_a.size)
        planted = pd.DataFrame({
            C.customer_id: self.cust_ids.take(owner_a), C.timestamp: self._ts(sec),
            C.amount: self.price[products].astype(float), C.product_id: self.prod_ids.take(products),
            C.quantity: 1.0,
            C.order_id: orders.take(np.arange(day_a.size) + int(tx[C.order_id].nunique())),
            C.channel: _labels(self.channel_names, chan),
            C.store_id: self.store_ids.take(self.home_store[owner_a], chan == self.store_code),
            C.is_return: _bool(np.zeros(day_a.size, dtype=bool))})
        merged = pd.concat([tx, planted], ignore_index=True)
        tables[Tables.transactions] = merged.iloc[_sort_index(merged[C.timestamp].to_numpy().view(np.int64))] \
            .reset_index(drop=True)
        truth = pd.DataFrame({C.customer_id: planted[C.customer_id], "occasion": pd.array(name_a, dtype="str"),
                              "occasion_date": pd.DatetimeIndex(date_a).as_unit("ns"),
                              C.timestamp: planted[C.timestamp], C.product_id: planted[C.product_id]})
        return tables, truth

    # -- campaigns: past win-back campaigns with random holdouts and known effects (features.campaign_sim)

    def _campaigns(self, tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        from features.campaign_sim import CampaignEffects, draw_exposures, run_campaign

        spec = self.g.get("campaigns")
        spec = dict(spec._data) if isinstance(spec, _Section) else dict(spec or {})
        schedule = spec.pop("schedule", None) or [
            # days before the calendar's end, share of consenting buyers, holdout, offer, cost per contact
            {"id": "winback-1", "days_before_end": 75, "share": 0.5, "holdout": 0.5, "offer": "10_percent_off",
             "cost": 0.5},
            {"id": "winback-2", "days_before_end": 35, "share": 0.4, "holdout": 0.2, "offer": "free_gift",
             "cost": 1.0},
        ]
        effects = CampaignEffects.of(spec)
        rng = self.rngs["campaigns"]
        truths = []
        end = self.dates[-1]
        truth = self._truth()
        dropout = pd.Series(truth["dropout_at"].to_numpy(), index=self.cust_ids.all())
        for item in schedule:
            sent = (end - pd.Timedelta(days=int(item["days_before_end"]))).normalize() + pd.Timedelta(hours=9)
            exposures = draw_exposures(tables, str(item["id"]), sent, float(item["share"]), float(item["holdout"]),
                                       str(item["offer"]), float(item["cost"]), rng,
                                       window_days=effects.window_days)
            tables, exposure_truth = run_campaign(tables, exposures, effects, rng, dropout)
            truths.append(exposure_truth)
        return tables, pd.concat(truths, ignore_index=True)

    # -- calendar: day-level intensities that every time draw follows

    def _calendar(self) -> None:
        g = self.g
        cal = g["calendar"]
        start, end = pd.Timestamp(cal["start"]), pd.Timestamp(cal["end"])
        if end <= start:
            raise ConfigError("preset: 'generator.calendar.end' must come after 'start'")
        dates = pd.date_range(start, end, freq="D")
        self.start, self.dates, self.days = start, dates, len(dates)
        years = (dates[0].year, dates[-1].year + 1)  # next year's early occasions can reach back into this one
        season = g["seasonality"]
        weekly = season.vector("weekly", 7)
        monthly = season.vector("monthly", 12)
        # Month multipliers are anchored at mid-month and interpolated so the year has no steps.
        pos = (dates.month - 1) + (dates.day - 0.5) / dates.days_in_month - 0.5
        trip = weekly[dates.day_of_week] * np.interp(pos, np.arange(12), monthly, period=12)
        disc = g["discounts"]
        discount_prob = np.full(self.days, disc.prob("rate"))
        for _, promo in (g.get("promotions") or _Section({}, "generator.promotions")).items():
            for day in _occurrences(promo, *years):
                window = (dates >= day - pd.Timedelta(days=promo.number("days_before", 0)))
                window &= dates <= day + pd.Timedelta(days=promo.number("days_after", 0))
                trip[window] *= promo.number("uplift", 0)
                discount_prob[window] = np.maximum(discount_prob[window], promo.prob("discount_rate"))
        occ = g["occasions"]
        win = occ.count("window_days")
        gift = np.zeros(self.days)
        for _, spec in (occ.get("dates") or _Section({}, "generator.occasions.dates")).items():
            for day in _occurrences(spec, *years):
                # Gifts are bought in the days before the occasion, more of them as it approaches.
                idx = (day - start).days - np.arange(win)
                ok = (idx >= 0) & (idx < self.days)
                gift[idx[ok]] += spec.number("weight", 0) * (win - np.arange(win))[ok] / win
        self.trip_intensity = trip / trip.mean()
        self.gift_intensity = gift / gift.mean() if gift.sum() > 0 else gift
        self.trip_cum = np.concatenate([[0.0], np.cumsum(self.trip_intensity)])
        self.gift_cum = np.concatenate([[0.0], np.cumsum(self.gift_intensity)])
        self.discount_prob = discount_prob
        depths = disc["depths"]
        self.depth_values = np.asarray([float(k) for k, _ in depths.items()])
        self.depth_probs = np.asarray([depths.number(k, 0) for k, _ in depths.items()])
        if not ((self.depth_values >= 0) & (self.depth_values < 1)).all() or self.depth_probs.sum() <= 0:
            raise ConfigError("preset: 'generator.discounts.depths' maps depths in [0, 1) to weights")
        self.depth_probs /= self.depth_probs.sum()

    # -- catalog: Zipf popularity, categories, prices, latent taste vectors

    def _catalog(self) -> None:
        g, rng = self.g, self.rngs["catalog"]
        cat_cfg, taste = g["catalog"], g["taste"]
        n_products = cat_cfg.count("products")
        names, shares = cat_cfg.shares("categories")
        if n_products < len(names):
            raise ConfigError("preset: 'generator.catalog.products' is smaller than the number of categories")
        specs = [cat_cfg["categories"][c] for c in names]
        counts = np.maximum(_largest_remainder(shares, n_products), 1)
        counts[np.argmax(counts)] -= counts.sum() - n_products
        cat = np.repeat(np.arange(len(names)), counts)  # products sorted by category: contiguous blocks
        self.cat_names, self.cat, self.n_products = names, cat, n_products
        self.n_cats = len(names)

        # Zipf popularity over a random rank order, so popular products are spread over categories.
        rank = rng.permutation(n_products) + 1
        log_pop = -cat_cfg.number("zipf_exponent", 0) * np.log(rank)

        median = np.array([s.number("price_median", 0) for s in specs])
        sigma = np.array([s.number("price_sigma", 0) for s in specs])
        self.price = np.round(median[cat] * np.exp(sigma[cat] * rng.standard_normal(n_products)),
                              _CURRENCY_DECIMALS)
        self.price = np.maximum(self.price, 10.0 ** -_CURRENCY_DECIMALS)
        self.cycle_of_cat = np.array([s.number("cycle_days", 0) if "cycle_days" in s else np.nan for s in specs])
        self.qty_extra_of_cat = np.array([s.number("quantity_extra_mean", 0, default=0.0) for s in specs])

        brand_names, brand = [], np.empty(n_products, dtype=np.int64)
        brand_zipf = cat_cfg.number("brand_zipf_exponent", 0)
        for c, (name, spec) in enumerate(zip(names, specs)):
            k = spec.count("brands")
            w = np.arange(1, k + 1) ** -brand_zipf
            brand[cat == c] = len(brand_names) + rng.choice(k, size=int(counts[c]), p=w / w.sum())
            brand_names += [f"{name}_brand_{i + 1:02d}" for i in range(k)]
        self.brand, self.brand_names = brand, brand_names

        # Most products predate the calendar; the rest launch during it (whole days, so launched_at is a date).
        new = rng.random(n_products) < cat_cfg.prob("launched_in_window")
        new[np.concatenate([[0], np.cumsum(counts)[:-1]])] = False  # every category keeps an established product
        age = cat_cfg.number("catalog_age_days", 1)
        self.launch_day = np.where(new, rng.integers(1, self.days, n_products),
                                   -rng.integers(1, int(age) + 1, n_products)).astype(np.int64)
        self.established = ~new
        self.in_stock = rng.random(n_products) < cat_cfg.prob("in_stock")

        # Latent tastes: products cluster around their category's centre, segments weigh directions.
        k_seg, dims = taste.count("segments"), taste.count("dims")
        centres = rng.standard_normal((self.n_cats, dims))
        v = centres[cat] + taste.number("category_spread", 0) * rng.standard_normal((n_products, dims))
        u = rng.standard_normal((k_seg, dims))
        v = v + self._attribute_tastes(cat_cfg, taste, rng, dims)
        log_pop = self.log_pop = self._launch_popularity(log_pop, new, cat_cfg)
        logits = log_pop[None, :] + taste.number("strength", 0) * (u @ v.T) / np.sqrt(dims)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        self.k_seg = k_seg
        self.taste_weights = w
        est = self.established[None, :]
        tilt = self.price[None, :] ** g["occasions"].number("price_tilt", 0)
        self.s_seg = _Sampler(w)
        self.s_seg_est = _Sampler(w * est)
        self.s_segcat = _Sampler(w, cat)
        self.s_segcat_est = _Sampler(w * est, cat)
        self.s_gift = _Sampler(w * tilt)
        self.s_gift_est = _Sampler(w * tilt * est)
        replenishable = ~np.isnan(self.cycle_of_cat[cat])
        self.s_regimen = _Sampler(w * est * replenishable[None, :]) if replenishable.any() else None

    def _launch_popularity(self, log_pop: np.ndarray, new: np.ndarray, cat_cfg: _Section) -> np.ndarray:
        """Popularity of the products launched during the calendar: what sets one launch apart from another is
        its attributes under the customer's taste (the taste term of the sampling weights), not a popularity of its
        own. Each launch starts from the ``launch_popularity`` quantile of the established products' popularity
        (a launch is promoted: it sells like the better part of the catalogue) plus ``launch_noise`` (sd of the
        log) of what attributes leave unexplained; the launches stage's stream, so the other stages' draws and
        the established products stay as they were. Without ``launch_popularity`` a launch keeps the independent
        popularity it drew with the catalogue."""
        if "launch_popularity" not in cat_cfg or not new.any():
            return log_pop
        rng = self.rngs["launches"]
        base = np.quantile(log_pop[~new], cat_cfg.prob("launch_popularity"))
        noise = cat_cfg.number("launch_noise", 0, default=0.0) * rng.standard_normal(int(new.sum()))
        out = log_pop.copy()
        out[new] = base + noise
        return out

    def _channel_catalog(self) -> None:
        """Products sold only online and in the app (``channels.online_only`` of them): never on a store's shelf,
        so a store order that drew one takes another product of the same taste instead (the stock stage's
        stream: the other stages' draws stay as they were)."""
        rng = self.rngs["stock"]
        self.online_only = rng.random(self.n_products) < self.g["channels"].prob("online_only", 0.0)
        if self.online_only.any():
            shelf = ~self.online_only[None, :]
            self.s_store = _Sampler(self.taste_weights * shelf, self.cat)
            self.s_store_est = _Sampler(self.taste_weights * shelf * self.established[None, :], self.cat)

    def _in_store_lines(self, line_order: np.ndarray, line_prod: np.ndarray, order_seg: np.ndarray) -> None:
        """Swap, in place, the online-only products of store orders for products a store sells, of the same
        category under the order's taste."""
        if not self.online_only.any():
            return
        swap = np.flatnonzero((self.order_channel[line_order] == self.store_code) & self.online_only[line_prod])
        o = line_order[swap]
        groups = order_seg[o] * self.n_cats + self.cat[line_prod[swap]]
        line_prod[swap] = self._draw(self.s_store, self.s_store_est, groups, self.order_t[o], self.rngs["stock"])

    def _inventory_table(self) -> pd.DataFrame | None:
        """Store-level stock (``generator.stock``): each store carries what it sold and ``carried`` of the other
        products it may sell (never an online-only one), ``quantity`` on the shelf now (``in_stock`` when above 0),
        0 for ``out_of_stock`` of them and for products out of stock everywhere. None when the preset has no ``stock`` section."""
        spec = self.g.get("stock")
        if spec is None:
            return None
        rng = self.rngs["stock"]
        carried = rng.random((self.n_stores, self.n_products)) < spec.prob("carried")
        sold = self.order_channel[self.line_order] == self.store_code
        carried[self.order_store[self.line_order[sold]], self.line_prod[sold]] = True
        carried[:, self.online_only] = False
        store, prod = np.nonzero(carried)
        quantity = 1 + rng.poisson(max(spec.number("quantity_mean", 1) - 1, 0.0), store.size)
        empty = (rng.random(store.size) < spec.prob("out_of_stock")) | ~self.in_stock[prod]
        return pd.DataFrame(copy=False, data={
            C.product_id: self.prod_ids.take(prod),
            C.store_id: self.store_ids.take(store),
            C.in_stock: _bool(~empty),
            C.quantity: np.where(empty, 0, quantity).astype(float),
        })

    def _attribute_tastes(self, cat_cfg: _Section, taste: _Section, rng: np.random.Generator,
                          dims: int) -> np.ndarray:
        """Taste offsets of each product from its attributes, and the attribute columns themselves.

        A product's taste vector is its category's centre plus one direction per attribute value (subcategory,
        brand, price band, collection, free attributes such as material), each scaled by
        ``taste.attribute_weights``: customers of a segment then prefer brands, price bands and materials, and
        a product launched later is liked by the customers who liked its attributes before. Names are built from
        the same values ("aurora gold engagement rings"), so name text carries the signal too.
        """
        n, cat = self.n_products, self.cat
        weights = taste.get("attribute_weights") or _Section({}, "generator.taste.attribute_weights")
        offsets = np.zeros((n, dims))

        def direction(codes: np.ndarray, levels: int, key: str) -> None:
            if key in weights:
                scale = weights.number(key, 0)
                offsets[:] += scale * rng.standard_normal((max(levels, 1), dims))[codes]

        # Category hierarchy: a subcategory under each category (uniform shares).
        specs = [cat_cfg["categories"][c] for c in self.cat_names]
        sub_names: list[str] = []
        sub = np.empty(n, dtype=np.int64)
        for c, spec in enumerate(specs):
            names = [str(x) for x in (spec.get("subcategories") or ["general"])]
            rows = np.flatnonzero(cat == c)
            sub[rows] = len(sub_names) + rng.integers(0, len(names), rows.size)
            sub_names += names
        self.sub, self.sub_names = sub, sub_names
        direction(sub, len(sub_names), "subcategory")
        direction(self.brand, len(self.brand_names), "brand")
        # Price band within the category: entry / mid / premium by the price's place in the category's spread.
        sigma = np.array([s.number("price_sigma", 0) for s in specs])
        median = np.array([s.number("price_median", 0) for s in specs])
        z = np.log(self.price / median[cat]) / np.maximum(sigma[cat], 1e-9)
        self.price_band = np.digitize(z, [-_PRICE_BAND_Z, _PRICE_BAND_Z])
        direction(cat * 3 + self.price_band, self.n_cats * 3, "price_band")
        # Collections: each brand runs a few named lines; the name is all a model sees of them.
        per_brand = cat_cfg.count("collections_per_brand") if "collections_per_brand" in cat_cfg else 1
        words = rng.choice(len(_COLLECTION_WORDS), size=(len(self.brand_names), per_brand))
        coll = self.brand * per_brand + rng.integers(0, per_brand, n)
        self.collection_names = [_COLLECTION_WORDS[k] for k in words.ravel()]
        direction(coll, len(self.collection_names), "collection")
        # Free attributes (material, finish, ...): one column each, values drawn by their shares.
        self.free_attributes: dict[str, tuple[list[str], np.ndarray]] = {}
        attrs = cat_cfg.get("attributes") or _Section({}, "generator.catalog.attributes")
        for name, _ in attrs.items():
            values, shares = attrs.shares(name)
            codes = rng.choice(len(values), size=n, p=shares)
            self.free_attributes[str(name)] = (values, codes)
            direction(codes, len(values), "attributes")
        parts = [np.asarray(self.collection_names, dtype=object)[coll]]
        parts += [np.asarray(values, dtype=object)[codes] for values, codes in self.free_attributes.values()]
        parts += [np.asarray(sub_names, dtype=object)[sub], np.asarray(self.cat_names, dtype=object)[cat]]
        self.names = [" ".join(str(p).replace("_", " ") for p in row) for row in zip(*parts)]
        return offsets

    def _draw(self, sampler: _Sampler, fallback: _Sampler, groups: np.ndarray, t: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
        """Products for ``groups`` at days ``t``; a product not launched yet is swapped for an established one."""
        prod = sampler.draw(groups, rng)
        early = np.flatnonzero(np.floor(t) < self.launch_day[prod])
        prod[early] = fallback.draw(groups[early], rng)
        return prod

    # -- customers: heterogeneous purchase rates and lifetimes (Pareto/NBD-like), satisfaction, profile

    def _customers(self) -> None:
        g, rng, n = self.g, self.rngs["customers"], self.n
        cust, taste, buy = g["customers"], g["taste"], g["purchase"]
        pre = rng.random(n) < cust.prob("prehistory_share")
        growth = cust.number("signup_growth", 0)
        f = rng.random(n)
        # Signups grow linearly over the calendar (density 1 at the start, 1 + growth at the end): inverse cdf.
        x = f if growth == 0 else (np.sqrt(1 + 2 * growth * f * (1 + growth / 2)) - 1) / growth
        prehistory = cust.number("prehistory_days", 0)
        self.signup = np.where(pre, -rng.random(n) * prehistory, x * self.days)
        self.pre = pre
        self.active_from = np.maximum(self.signup, 0.0)

        sizes = rng.dirichlet(np.full(self.k_seg, taste.number("segment_concentration", 0)))
        self.seg = rng.choice(self.k_seg, size=n, p=sizes)

        rate, drop = buy["trips_per_year"], buy["dropout_per_year"]
        shape = rate.number("shape", 0)
        self.lam = rng.gamma(shape, rate.number("mean", 0) / shape, n) / _DAYS_PER_YEAR
        sat_cfg = g["satisfaction"]
        self.sat = rng.standard_normal(n)
        # Dissatisfaction raises the dropout hazard; the -effect^2/2 keeps the mean hazard at the preset's.
        eff = sat_cfg.number("hazard_effect", 0)
        shape = drop.number("shape", 0)
        self.mu = (rng.gamma(shape, drop.number("mean", 0) / shape, n) * np.exp(-eff * self.sat - eff**2 / 2)
                   / _DAYS_PER_YEAR)
        # Exponential lifetime, clocked from the calendar start for members who joined earlier (memoryless).
        self.t_drop = self.active_from + rng.exponential(1.0, n) / self.mu
        self.hi = np.minimum(self.t_drop, self.days)
        # Nothing (purchase, event, return, feedback) happens from the midnight after dropout on.
        dropped = self.t_drop < self.days
        self.dropped = dropped
        self.limit_sec = np.where(dropped, np.floor(self.t_drop) + 1, self.days).astype(np.int64) * _SECONDS_PER_DAY

        fade = buy["fade"]
        self.fade_days, self.fade_power = fade.number("days", 0), fade.number("power", 0)

        # Profile.
        regions, region_p = cust.shares("regions")
        self.region_names = regions
        self.region = rng.choice(len(regions), size=n, p=region_p)
        stores = np.array([cust["regions"][r].count("stores") for r in regions])
        self.store_offset = np.concatenate([[0], np.cumsum(stores)[:-1]])
        self.stores_per_region, self.n_stores = stores, int(stores.sum())
        self.home_store = self.store_offset[self.region] + np.floor(rng.random(n) * stores[self.region]).astype(
            np.int64)

        ch = g["channels"]
        self.channel_names, self.channel_p = ch.shares("mix")
        if STORE_CHANNEL not in self.channel_names:
            raise ConfigError(f"preset: 'generator.channels.mix' needs a '{STORE_CHANNEL}' channel")
        self.store_code = self.channel_names.index(STORE_CHANNEL)
        self.pref_channel = rng.choice(len(self.channel_names), size=n, p=self.channel_p)

        by = cust["birth_year"]
        seg_age = rng.standard_normal(self.k_seg) * taste.number("segment_age_sd", 0)
        birth = by.number("mean") + seg_age[self.seg] + by.number("sd", 0) * rng.standard_normal(n)
        self.birth_year = np.clip(np.round(birth), by.number("min"), by.number("max")).astype(np.int64)
        self.birth_known = rng.random(n) >= by.prob("missing")
        gen = cust["gender"]
        self.gender_names, gender_p = gen.shares("shares")
        self.gender = rng.choice(len(self.gender_names), size=n, p=gender_p)
        self.gender_known = rng.random(n) >= gen.prob("missing")

        # Tiers follow spend: rank by purchase rate blurred by noise, lowest tier first in the preset.
        self.tier_names, tier_p = cust.shares("tiers")
        score = np.log(self.lam) + cust.number("tier_noise", 0) * rng.standard_normal(n)
        pct = np.empty(n)
        pct[np.argsort(score, kind="stable")] = (np.arange(n) + 0.5) / n
        self.tier = np.minimum(np.searchsorted(np.cumsum(tier_p), pct), len(tier_p) - 1)

        consent = cust["consent"]
        self.consent_profiling = rng.random(n) < consent.prob("profiling")
        self.consent_marketing = rng.random(n) < np.where(
            self.consent_profiling, consent.prob("marketing_if_profiling"), consent.prob("marketing_otherwise"))

        fav = buy["favourites"]
        n_fav = fav.count("count")
        owners = np.repeat(self.seg, n_fav)
        self.favourites = self.s_seg_est.draw(owners, rng).reshape(n, n_fav)
        w = fav.number("decay", 0, 1) ** np.arange(n_fav)
        self.fav_cdf = np.cumsum(w) / w.sum()
        self.fav_cdf[-1] = 1.0

    def _fade_keep(self, owner: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Thinning that makes activity fade over the last ``fade.days`` before a customer drops out."""
        if self.fade_days <= 0:
            return np.ones(owner.size, dtype=bool)
        left = np.clip((self.t_drop[owner] - t) / self.fade_days, 0.0, 1.0)
        return rng.random(owner.size) < left**self.fade_power

    # -- orders: shopping trips, replenishment re-buys, gifts; merged per customer into orders

    def _orders(self) -> None:
        g, rng, n = self.g, self.rngs["orders"], self.n
        buy, rep, occ = g["purchase"], g["replenishment"], g["occasions"]

        owner, t = _poisson_times(rng, self.trip_cum, self.lam, self.active_from, self.hi)
        keep = self._fade_keep(owner, t, rng)
        owner, t = owner[keep], t[keep]
        # Members who join during the calendar mostly register at their first purchase.
        first = np.flatnonzero(~self.pre & (rng.random(n) < buy.prob("first_order_at_signup")))
        owner, t = np.concatenate([owner, first]), np.concatenate([t, self.signup[first]])
        merge = rep.number("merge_days", 0)
        span = self.days + 2 * merge + 1  # keys of different customers are always more than `merge` apart
        key = owner * span + t
        order = np.argsort(key, kind="stable")
        trip_owner, trip_t, trip_key = owner[order], t[order], key[order]
        n_trips = trip_owner.size

        # Replenishment: regimen products re-bought around their category cycle with personal jitter.
        r_owner, r_t, r_prod = self._regimen_rebuys(rep, rng)
        rkey = r_owner * span + r_t
        pos = np.searchsorted(trip_key, rkey)
        left, right = np.maximum(pos - 1, 0), np.minimum(pos, max(n_trips - 1, 0))
        if n_trips:
            dl, dr = rkey - trip_key[left], trip_key[right] - rkey
            dl[pos == 0] = np.inf
            dr[pos == n_trips] = np.inf
        else:
            dl = dr = np.full(rkey.size, np.inf)
        nearest = np.where(dl <= dr, left, right)
        snapped = np.minimum(dl, dr) <= merge  # a re-buy due near a trip is bought on that trip

        # Gifts: rare, higher-priced, timed by the occasion calendar.
        g_owner, g_t = _poisson_times(rng, self.gift_cum, self.lam * occ.number("gifts_per_trip", 0),
                                      self.active_from, self.hi)
        keep = self._fade_keep(g_owner, g_t, rng)
        g_owner, g_t = g_owner[keep], g_t[keep]

        # Re-buys not snapped to a trip, and gifts, form their own orders; those close in time merge.
        s_owner = np.concatenate([r_owner[~snapped], g_owner])
        s_t = np.concatenate([r_t[~snapped], g_t])
        s_kind = np.concatenate([np.zeros((~snapped).sum(), dtype=np.int8), np.ones(g_owner.size, dtype=np.int8)])
        s_prod = np.concatenate([r_prod[~snapped], np.full(g_owner.size, -1)])
        order = np.argsort(s_owner * span + s_t, kind="stable")
        s_owner, s_t, s_kind, s_prod = s_owner[order], s_t[order], s_kind[order], s_prod[order]
        new = np.ones(s_owner.size, dtype=bool)
        new[1:] = (s_owner[1:] != s_owner[:-1]) | (s_t[1:] - s_t[:-1] > merge)
        s_order = n_trips + np.cumsum(new) - 1

        self.order_owner = np.concatenate([trip_owner, s_owner[new]])
        self.order_t = np.concatenate([trip_t, s_t[new]])
        self.n_trips = n_trips
        self.basket_extra = buy.number("basket_extra_mean", 0)  # for every order, see _lines
        # Lines fixed so far: (order, product or -1 for "draw a gift", kind).
        self.fixed_order = np.concatenate([nearest[snapped], s_order])
        self.fixed_prod = np.concatenate([r_prod[snapped], s_prod])
        self.fixed_gift = np.concatenate([np.zeros(snapped.sum(), dtype=bool), s_kind == 1])
        self.standalone_first = snapped.sum() + np.flatnonzero(new)  # first fixed line of each own order

        # Order attributes: channel (customer preference), store, time of day, discount.
        n_orders = self.order_owner.size
        ch = g["channels"]
        own = self.order_owner
        loyal = rng.random(n_orders) < ch.prob("loyalty")
        other = rng.choice(len(self.channel_names), size=n_orders, p=self.channel_p)
        self.order_channel = np.where(loyal, self.pref_channel[own], other)
        region = self.region[own]
        random_store = self.store_offset[region] + np.floor(
            rng.random(n_orders) * self.stores_per_region[region]).astype(np.int64)
        self.order_store = np.where(rng.random(n_orders) < ch.prob("home_store"), self.home_store[own],
                                    random_store)
        hours = ch["hours"]
        mean = np.array([hours[c].number("mean", 0, 24) for c in self.channel_names])
        sd = np.array([hours[c].number("sd", 0) for c in self.channel_names])
        open_ = np.array([hours[c].number("open", 0, 24, default=0.0) for c in self.channel_names])
        close = np.array([hours[c].number("close", 0, 24, default=24.0) for c in self.channel_names])
        c = self.order_channel
        hour = mean[c] + sd[c] * rng.standard_normal(n_orders)
        hour = open_[c] + np.mod(hour - open_[c], close[c] - open_[c])  # wrap into opening hours
        day = np.floor(self.order_t)
        self.order_day = day.astype(np.int64)
        self.order_sec = (day * _SECONDS_PER_DAY + np.floor(hour * _SECONDS_PER_HOUR)).astype(np.int64)
        discounted = rng.random(n_orders) < self.discount_prob[self.order_day]
        depth = self.depth_values[rng.choice(self.depth_values.size, size=n_orders, p=self.depth_probs)]
        self.order_depth = np.where(discounted, depth, 0.0)

    def _regimen_rebuys(self, rep: _Section, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Re-buys of each (customer, regimen product) on a personal schedule, each jittered around its slot."""
        if self.regimen is None:  # drawn once: a redraw of the purchases (purchase_redraws) keeps every regimen
            self.regimen = self._regimen_schedule(rep, rng)
        owner, prod, cycle, start = self.regimen
        if owner.size == 0:
            return owner, np.empty(0), prod
        hi = _cum_at(self.trip_cum, self.hi[owner])
        slots = np.floor(np.maximum(hi - start, 0) / cycle).astype(np.int64) + 2  # +1 slot jitter may pull in
        idx = np.repeat(np.arange(owner.size), slots)
        first = np.concatenate([[0], np.cumsum(slots)[:-1]])
        j = np.arange(idx.size) - first[idx]
        t = start[idx] + cycle[idx] * (j + rep.number("jitter_sd", 0) * rng.standard_normal(idx.size))
        lo = _cum_at(self.trip_cum, self.active_from[owner])
        keep = (t >= lo[idx]) & (t < hi[idx])
        idx = idx[keep]
        t = np.minimum(_inverse_cum(self.trip_cum, t[keep]), np.nextafter(self.hi[owner[idx]], -np.inf))
        r_owner = owner[idx]
        keep = self._fade_keep(r_owner, t, rng)  # fading customers skip slots: their re-buys become overdue
        return r_owner[keep], t[keep], prod[idx][keep]

    def _regimen_schedule(self, rep: _Section, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each (customer, regimen product): its cycle and first slot, in shopping time (see below)."""
        n = self.n
        empty = np.empty(0, dtype=np.int64)
        has = rng.random(n) < rep.prob("share")
        if self.s_regimen is None or not has.any():
            self.regimen_count = np.zeros(n, dtype=np.int64)
            return empty, empty, np.empty(0), np.empty(0)
        m = np.where(has, 1 + rng.poisson(max(rep.number("products_mean", 1) - 1, 0.0), n), 0)
        owner = np.repeat(np.arange(n), m)
        prod = self.s_regimen.draw(self.seg[owner], rng)
        # One schedule per distinct product: a duplicate draw would halve the apparent cycle.
        pair = np.sort(owner * self.n_products + prod)
        pair = pair[np.concatenate([[True], pair[1:] != pair[:-1]])]
        owner, prod = pair // self.n_products, pair % self.n_products
        self.regimen_count = np.bincount(owner, minlength=n)
        personal = np.exp(rep.number("personal_sd", 0) * rng.standard_normal(n))
        cycle = self.cycle_of_cat[self.cat[prod]] * personal[owner]
        # Schedules run in "shopping time" (the cumulative trip intensity, one per day on average), so re-buys
        # keep the weekly rhythm and are pulled forward into promotions, as stock-ups are.
        lo = _cum_at(self.trip_cum, self.active_from[owner])
        # The phase is the customer's, not the product's: staples on one cycle fall due together (the weekly
        # shop). Jitter is around fixed slots, not accumulated, so the routine does not drift apart.
        start = lo + rng.random(n)[owner] * cycle
        return owner, prod, cycle, start

    # -- order lines: what each order contains

    def _lines(self) -> None:
        g, rng = self.g, self.rngs["lines"]
        buy, taste = g["purchase"], g["taste"]
        n_orders = self.order_owner.size
        own, t = self.order_owner, self.order_t
        # Each order follows one taste: mostly the customer's segment, sometimes another.
        order_seg = np.where(rng.random(n_orders) < taste.prob("purity"), self.seg[own],
                             rng.integers(0, self.k_seg, n_orders))

        trips = np.arange(self.n_trips)
        # Trip anchor: a favourite re-bought, or a new product under the order's taste.
        fav = rng.random(self.n_trips) < buy["favourites"].prob("repeat_share")
        anchor = np.empty(self.n_trips, dtype=np.int64)
        slot = np.searchsorted(self.fav_cdf, rng.random(fav.sum()), side="right")
        anchor[fav] = self.favourites[own[trips[fav]], np.minimum(slot, self.favourites.shape[1] - 1)]
        nf = trips[~fav]
        anchor[nf] = self._draw(self.s_seg, self.s_seg_est, order_seg[nf], t[nf], rng)

        gift = np.flatnonzero(self.fixed_gift)
        f_prod = self.fixed_prod.copy()
        go = self.fixed_order[gift]
        f_prod[gift] = self._draw(self.s_gift, self.s_gift_est, order_seg[go], t[go], rng)

        # Basket extras under the same taste, often from the first line's category (what sells together);
        # orders that start from a re-buy or a gift get them too: the weekly shop is more than its staples.
        first_prod = np.concatenate([anchor, f_prod[self.standalone_first]])
        extra = rng.poisson(self.basket_extra, n_orders)
        e_order = np.repeat(np.arange(n_orders), extra)
        e_prod = np.empty(e_order.size, dtype=np.int64)
        same = rng.random(e_order.size) < buy.prob("basket_same_category")
        so, do = e_order[same], e_order[~same]
        e_prod[same] = self._draw(self.s_segcat, self.s_segcat_est,
                                  order_seg[so] * self.n_cats + self.cat[first_prod[so]], t[so], rng)
        e_prod[~same] = self._draw(self.s_seg, self.s_seg_est, order_seg[do], t[do], rng)

        line_order = np.concatenate([trips, e_order, self.fixed_order])
        line_prod = np.concatenate([anchor, e_prod, f_prod])
        self._in_store_lines(line_order, line_prod, order_seg)
        qty = np.ones(line_prod.size, dtype=np.int64)
        extra_mean = self.qty_extra_of_cat[self.cat[line_prod]]
        multi = np.flatnonzero(extra_mean > 0)
        qty[multi] += rng.poisson(extra_mean[multi])

        # Order ids follow time; lines sorted by (order, product), the same product twice in an order is
        # one line with the quantities added up, as a till or a web shop records it.
        order_rank = np.empty(n_orders, dtype=np.int64)
        order_rank[_sort_index(self.order_sec)] = np.arange(n_orders)
        key = order_rank[line_order] * self.n_products + line_prod
        sort = _sort_index(key)
        key = key[sort]
        head = np.ones(key.size, dtype=bool)
        head[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(head)
        self.line_qty = np.add.reduceat(qty[sort], starts) if starts.size else qty[:0]
        self.line_order = line_order[sort][starts]
        self.line_prod = line_prod[sort][starts]
        self.order_rank = order_rank

        o = self.line_order
        depth = self.order_depth[o]
        self.line_amount = np.round(self.line_qty * self.price[self.line_prod] * (1 - depth), _CURRENCY_DECIMALS)
        self.line_owner = own[o]
        self.line_sec = self.order_sec[o]

    # -- returns: a share of lines comes back, more often from dissatisfied customers

    def _returns(self) -> None:
        g, rng = self.g, self.rngs["returns"]
        ret, eff = g["returns"], g["satisfaction"].number("return_effect", 0)
        p = ret.prob("rate") * np.exp(-eff * self.sat - eff**2 / 2)
        owner = self.line_owner
        back = np.flatnonzero(rng.random(owner.size) < np.minimum(p[owner], 1.0))
        lag = ret.number("lag_days_min", 0) + rng.exponential(ret.number("lag_days_mean", 0), back.size)
        # At least a second after the purchase, so a return always follows the line it reverses.
        sec = self.line_sec[back] + np.maximum(np.floor(lag * _SECONDS_PER_DAY).astype(np.int64), 1)
        ok = sec < self.limit_sec[owner[back]]
        self.ret_line, self.ret_sec = back[ok], sec[ok]

    # -- events: browse -> cart -> purchase, plus browsing that ends without a purchase

    @staticmethod
    def _stacked_offsets(present: dict[str, np.ndarray], gaps: _Section,
                         rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per event type, minutes from the first to that step; steps follow the intent order."""
        size = next(iter(present.values())).size
        clock, out = np.zeros(size), {}
        for etype in _INTENT_ORDER:
            if etype in present:
                step = rng.exponential(gaps.number(etype, 0), size)
                clock = clock + np.where(present[etype], step, 0.0)
                out[etype] = clock.copy()
        return out

    @staticmethod
    def _event_kinds(probs: _Section, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Which of ``size`` items get each event type, by the type's probability in ``probs``."""
        out = {}
        for etype, _ in probs.items():
            if etype not in _INTENT_ORDER:
                raise ConfigError(f"preset: '{probs._path}.{etype}' is not an event type "
                                  f"({', '.join(_INTENT_ORDER)})")
            out[etype] = rng.random(size) < probs.prob(etype)
        return out

    def _events(self) -> None:
        g, rng = self.g, self.rngs["events"]
        ev, taste, buy = g["events"], g["taste"], g["purchase"]
        gaps = ev["gap_minutes"]
        # (owner, product, event type code, seconds, channel) of each batch of events; typed even when empty.
        none = np.empty(0, dtype=np.int64)
        parts = [(none, none, none.astype(np.int8), none, none)]
        type_code = {e: i for i, e in enumerate(EventTypes.ALL)}

        def emit(mask, owner, prod, etype, sec, chan):
            code = np.full(int(mask.sum()), type_code[etype], dtype=np.int8)
            parts.append((owner[mask], prod[mask], code, sec[mask], chan[mask]))

        # Before a purchase: steps counted back from the payment (cart just before, views earlier).
        chan = self.order_channel[self.line_order]
        for kind, lines in (("digital", np.flatnonzero(chan != self.store_code)),
                            ("store", np.flatnonzero(chan == self.store_code))):
            probs = ev["before_purchase"][kind]
            present = self._event_kinds(probs, lines.size, rng)
            if not present or lines.size == 0:
                continue
            offsets = self._stacked_offsets(present, gaps, rng)
            # Minutes before paying: the intent stack reversed, plus the last step to the checkout.
            last = offsets[[e for e in _INTENT_ORDER if e in offsets][-1]]
            checkout = rng.exponential(gaps.number("checkout", 0), lines.size)
            for etype, off in offsets.items():
                lead = np.floor((last - off + checkout) * _SECONDS_PER_MINUTE).astype(np.int64)
                sec = self.line_sec[lines] - lead
                emit(present[etype], self.line_owner[lines], self.line_prod[lines], etype, sec, chan[lines])

        # Browsing that ends without a purchase: sessions on the trip calendar, products from the same taste.
        br = ev["browse"]
        s_owner, s_t = _poisson_times(rng, self.trip_cum, self.lam * br.number("sessions_per_trip", 0),
                                      self.active_from, self.hi)
        keep = self._fade_keep(s_owner, s_t, rng)
        s_owner, s_t = s_owner[keep], s_t[keep]
        n_s = s_owner.size
        loyal = rng.random(n_s) < g["channels"].prob("loyalty")
        s_chan = np.where(loyal, self.pref_channel[s_owner],
                          rng.choice(len(self.channel_names), size=n_s, p=self.channel_p))
        s_seg = np.where(rng.random(n_s) < taste.prob("purity"), self.seg[s_owner], rng.integers(0, self.k_seg, n_s))
        first = self._draw(self.s_seg, self.s_seg_est, s_seg, s_t, rng)
        more = rng.poisson(br.number("products_extra_mean", 0), n_s)
        sess = np.concatenate([np.arange(n_s), np.repeat(np.arange(n_s), more)])
        prod = np.concatenate([first, np.empty(more.sum(), dtype=np.int64)])
        rest = np.arange(n_s, sess.size)
        same = rng.random(rest.size) < buy.prob("basket_same_category")
        rs, rd = rest[same], rest[~same]
        prod[rs] = self._draw(self.s_segcat, self.s_segcat_est,
                              s_seg[sess[rs]] * self.n_cats + self.cat[first[sess[rs]]], s_t[sess[rs]], rng)
        prod[rd] = self._draw(self.s_seg, self.s_seg_est, s_seg[sess[rd]], s_t[sess[rd]], rng)
        # Each product is looked at within minutes of the session start; later steps stack on that.
        base = s_t[sess] * _MINUTES_PER_DAY + rng.exponential(br.number("minutes_per_product", 0), sess.size)
        chan = s_chan[sess]
        for kind, items in (("digital", np.flatnonzero(chan != self.store_code)),
                            ("store", np.flatnonzero(chan == self.store_code))):
            present = self._event_kinds(br[kind], items.size, rng)
            if not present or items.size == 0:
                continue
            offsets = self._stacked_offsets(present, gaps, rng)
            for etype, off in offsets.items():
                sec = np.floor((base[items] + off) * _SECONDS_PER_MINUTE).astype(np.int64)
                emit(present[etype], s_owner[sess[items]], prod[items], etype, sec, chan[items])

        owner, prod, etype, sec, chan = (np.concatenate(col) for col in zip(*parts))
        # Events from before the calendar or after the customer left are not in the log.
        ok = np.flatnonzero((sec >= 0) & (sec < self.limit_sec[owner]))
        ok = ok[_sort_index(sec[ok])]
        ok = ok[_unique_rows(sec[ok], owner[ok], prod[ok], etype[ok], chan[ok])]
        self.ev_owner, self.ev_prod, self.ev_type, self.ev_sec, self.ev_chan = (
            owner[ok], prod[ok], etype[ok], sec[ok], chan[ok])

    # -- feedback: post-purchase surveys, and complaints shortly before dissatisfied customers leave

    def _feedback(self) -> None:
        g, rng = self.g, self.rngs["feedback"]
        fb, sat_cfg = g["feedback"], g["satisfaction"]
        score_cfg = fb["score"]
        n_orders = self.order_owner.size
        asked = np.flatnonzero(rng.random(n_orders) < fb.prob("survey_rate"))
        owner = self.order_owner[asked]
        sec = self.order_sec[asked] + np.floor(
            rng.exponential(fb.number("lag_days_mean", 0), asked.size) * _SECONDS_PER_DAY).astype(np.int64)
        raw = (score_cfg.number("mean", 1, 5) + score_cfg.number("satisfaction_weight", 0) * self.sat[owner]
               + score_cfg.number("noise_sd", 0) * rng.standard_normal(asked.size))
        score = np.clip(np.round(raw), 1, 5)
        low = score <= fb.number("complaint_max_score", 1, 5)
        complaint = low & (rng.random(asked.size) < fb.prob("complaint_given_low_score"))

        before = fb["before_dropout"]
        leaving = np.flatnonzero(self.dropped & (self.sat < sat_cfg.number("dissatisfied_below"))
                                 & (rng.random(self.n) < before.prob("probability")))
        window = np.minimum(before.number("lead_days", 0), self.t_drop[leaving] - self.active_from[leaving])
        t = self.t_drop[leaving] - rng.random(leaving.size) * window
        l_sec = np.floor(t * _SECONDS_PER_DAY).astype(np.int64)
        l_score = rng.integers(1, int(fb.number("complaint_max_score", 1, 5)) + 1, leaving.size)

        owner = np.concatenate([owner, leaving])
        sec = np.concatenate([sec, l_sec])
        score = np.concatenate([score, l_score]).astype(float)
        complaint = np.concatenate([complaint, np.ones(leaving.size, dtype=bool)])
        topics = fb["topics"]
        c_names, c_p = topics.shares("complaint")
        o_names, o_p = topics.shares("other")
        self.topic_names = c_names + [x for x in o_names if x not in c_names]
        c_code = rng.choice(len(c_names), size=owner.size, p=c_p)
        o_code = np.array([self.topic_names.index(x) for x in o_names])[
            rng.choice(len(o_names), size=owner.size, p=o_p)]
        topic = np.where(complaint, c_code, o_code)

        ok = np.flatnonzero(sec < self.limit_sec[owner])
        ok = ok[_sort_index(sec[ok])]
        ok = ok[_unique_rows(sec[ok], owner[ok], score[ok], complaint[ok], topic[ok])]
        self.fb_owner, self.fb_sec, self.fb_score = owner[ok], sec[ok], score[ok]
        self.fb_complaint, self.fb_topic = complaint[ok], topic[ok]

    # -- canonical tables

    def _ts(self, sec: np.ndarray) -> np.ndarray:
        return (self.start.value + sec.astype(np.int64) * _NS_PER_SECOND).view("datetime64[ns]")

    def _transactions_table(self) -> pd.DataFrame:
        # Purchases are in time order already (order ids follow time); returns are merged in by timestamp.
        n_lines = self.line_owner.size
        src = np.concatenate([np.arange(n_lines), self.ret_line])
        is_ret = np.concatenate([np.zeros(n_lines, dtype=bool), np.ones(self.ret_line.size, dtype=bool)])
        sec = np.concatenate([self.line_sec, self.ret_sec])
        order = _sort_index(sec)
        src, is_ret, sec = src[order], is_ret[order], sec[order]
        sign = np.where(is_ret, -1.0, 1.0)
        o = self.line_order[src]
        chan = self.order_channel[o]
        order_ids = _Ids("order", self.order_owner.size)
        return pd.DataFrame(copy=False, data={
            C.customer_id: self.cust_ids.take(self.line_owner[src]),
            C.timestamp: self._ts(sec),
            C.amount: sign * self.line_amount[src],
            C.product_id: self.prod_ids.take(self.line_prod[src]),
            C.quantity: sign * self.line_qty[src].astype(float),
            C.order_id: order_ids.take(self.order_rank[o]),
            C.channel: _labels(self.channel_names, chan),
            C.store_id: self.store_ids.take(self.order_store[o], chan == self.store_code),
            C.is_return: _bool(is_ret),
        })

    def _profile_tables(self) -> dict[str, pd.DataFrame]:
        customers = pd.DataFrame(copy=False, data={
            C.customer_id: self.cust_ids.all(),
            C.signup_date: self._ts(np.floor(self.signup).astype(np.int64) * _SECONDS_PER_DAY),
            C.birth_year: pd.arrays.IntegerArray(self.birth_year, ~self.birth_known),
            C.gender: _labels(self.gender_names, self.gender, self.gender_known),
            C.region: _labels(self.region_names, self.region),
            C.member_tier: _labels(self.tier_names, self.tier),
            C.consent_profiling: _bool(self.consent_profiling),
            C.consent_marketing: _bool(self.consent_marketing),
        })
        products = pd.DataFrame(copy=False, data={
            C.product_id: self.prod_ids.all(),
            C.category: _labels(self.cat_names, self.cat),
            C.subcategory: _labels(self.sub_names, self.sub),
            C.brand: _labels(self.brand_names, self.brand),
            C.price: self.price.astype(float),
            C.in_stock: _bool(self.in_stock),
            C.launched_at: self._ts(self.launch_day * _SECONDS_PER_DAY),
            C.name: pd.array(self.names, dtype="str"),
            # Free attributes after the canonical columns (the contract keeps extra columns).
            **{name: _labels(values, codes) for name, (values, codes) in self.free_attributes.items()},
        })
        return {Tables.customers: customers, Tables.products: products}

    def _events_table(self) -> pd.DataFrame:
        self._events()
        return pd.DataFrame(copy=False, data={
            C.customer_id: self.cust_ids.take(self.ev_owner),
            C.product_id: self.prod_ids.take(self.ev_prod),
            C.event_type: _labels(list(EventTypes.ALL), self.ev_type),
            C.timestamp: self._ts(self.ev_sec),
            C.channel: _labels(self.channel_names, self.ev_chan),
        })

    def _feedback_table(self) -> pd.DataFrame:
        return pd.DataFrame(copy=False, data={
            C.customer_id: self.cust_ids.take(self.fb_owner),
            C.timestamp: self._ts(self.fb_sec),
            C.score: self.fb_score,
            C.complaint: _bool(self.fb_complaint),
            C.topic: _labels(self.topic_names, self.fb_topic),
        })

    def _truth(self) -> pd.DataFrame:
        return pd.DataFrame(copy=False, data={
            C.customer_id: self.cust_ids.all(),
            "segment": self.seg,
            "trips_per_year": self.lam * _DAYS_PER_YEAR,
            "dropout_hazard_per_year": self.mu * _DAYS_PER_YEAR,
            "satisfaction": self.sat,
            "active_from": self._ts(np.floor(self.active_from * _SECONDS_PER_DAY).astype(np.int64)),
            "dropout_at": np.where(self.dropped, self._ts(self.limit_sec), np.datetime64("NaT", "ns")),
            "regimen_products": self.regimen_count,
            "preferred_channel": _labels(self.channel_names, self.pref_channel),
            "home_store": self.store_ids.take(self.home_store),
        })

    def _product_truth(self) -> pd.DataFrame:
        return pd.DataFrame(copy=False, data={C.product_id: self.prod_ids.all(),
                                              "launched_in_calendar": ~self.established,
                                              "log_popularity": self.log_pop})

    def _stores(self) -> pd.DataFrame:
        region = np.repeat(np.arange(len(self.region_names)), self.stores_per_region)
        return pd.DataFrame(copy=False, data={
            C.store_id: self.store_ids.all(), C.region: _labels(self.region_names, region)})

    def _calendar_table(self) -> pd.DataFrame:
        return pd.DataFrame(copy=False, data={
            "date": self.dates.values,
            "trip_intensity": self.trip_intensity,
            "gift_intensity": self.gift_intensity,
            "discount_prob": self.discount_prob,
        })


SHOP_PHONE = "shop-counter"  # the key a till uses when a customer gives no phone: shared, links nobody


def with_channel_ids(tables: dict[str, pd.DataFrame], share: float, seed: int
                     ) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The same shop as three systems see it: ``share`` of the customers who bought in the app have an app id of
    their own there (``<id>-app``), holding their app purchases and app events, and an ``identities`` table
    links ids through keys, as a CRM export would: a member card per customer id, the hashed phone of each
    person (shared by the person's ids), and a shop counter's phone typed in for many walk-in customers
    (a shared key that must link nobody, :mod:`features.linking`).

    Returns
    -------
    (tables, truth)
        The tables with an ``identities`` table, and each app id -> the customer id of the same person.
    """
    if not 0 <= share <= 1:
        raise ConfigError(f"linked share: must be between 0 and 1, not {share}")
    rng = np.random.default_rng([seed, 7919])
    tx = tables[Tables.transactions]
    app_buyers = np.sort(tx.loc[tx[C.channel] == "app", C.customer_id].astype(str).unique()) \
        if C.channel in tx.columns else np.array([], dtype=object)
    chosen = set(rng.choice(app_buyers, size=int(round(share * len(app_buyers))), replace=False).tolist()) \
        if len(app_buyers) else set()
    truth = {f"{c}-app": c for c in sorted(chosen)}
    out = dict(tables)
    for name in (Tables.transactions, Tables.events):
        frame = tables.get(name)
        if frame is None or C.channel not in frame.columns:
            continue
        moved = frame[C.customer_id].astype(str).isin(chosen) & (frame[C.channel] == "app")
        ids = frame[C.customer_id].astype(str).where(~moved, frame[C.customer_id].astype(str) + "-app")
        out[name] = frame.assign(**{C.customer_id: ids.astype(frame[C.customer_id].dtype)})
    customers = tables[Tables.customers]
    app_rows = customers[customers[C.customer_id].astype(str).isin(chosen)]
    app_rows = app_rows.assign(**{C.customer_id: (app_rows[C.customer_id].astype(str) + "-app").astype(
        customers[C.customer_id].dtype)})
    out[Tables.customers] = pd.concat([customers, app_rows], ignore_index=True)
    ids = out[Tables.customers][C.customer_id].astype(str)
    person = ids.map(lambda c: truth.get(c, c))
    phone = person.map(lambda p: hashlib.sha256(f"phone:{p}".encode()).hexdigest()[:20])
    # Some customers at the till gave the shop's own number: more than a person's ids, so it must link nobody.
    n_walk_ins = max(DEFAULT_MAX_IDS_PER_KEY + 5, int(0.03 * len(ids))) if len(ids) > 4 * DEFAULT_MAX_IDS_PER_KEY \
        else 0
    walk_ins = np.zeros(len(ids), dtype=bool)
    walk_ins[rng.choice(len(ids), size=n_walk_ins, replace=False)] = True
    rows = [pd.DataFrame({C.customer_id: ids, C.id_type: "member_card",
                          C.id_value: [f"M{abs(hash_text(c)) % 10**10:010d}" for c in ids]}),
            pd.DataFrame({C.customer_id: ids[person.ne(ids) | person.isin(chosen)],
                          C.id_type: "phone_sha256", C.id_value: phone[person.ne(ids) | person.isin(chosen)]}),
            pd.DataFrame({C.customer_id: ids[walk_ins], C.id_type: "phone_sha256", C.id_value: SHOP_PHONE})]
    out[Tables.identities] = pd.concat(rows, ignore_index=True).astype("str").drop_duplicates(ignore_index=True)
    return out, truth


def hash_text(text: str) -> int:
    """A stable integer of ``text`` (Python's ``hash`` of a string changes from process to process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)
