"""The customer x product interaction matrix: purchases and events, weighted by type, quantity and recency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import Columns as C
from features.columns import EventTypes, Tables
from features.config import InteractionConfig
from features.idmap import IdMap
from features.purchases import returned

WEIGHT = "weight"


@dataclass(frozen=True)
class Interactions:
    """A sparse customers x products matrix with the id maps of its rows and columns."""

    matrix: sp.csr_matrix
    customers: IdMap
    products: IdMap

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape


def _damp(x: np.ndarray, how: str) -> np.ndarray:
    """Quantity damping with damp(1) = 1, so a single unit keeps its type weight."""
    if how == "log":
        return np.log1p(x) / np.log(2.0)
    if how == "sqrt":
        return np.sqrt(x)
    return x


def _decay(age_days: np.ndarray, half_life: float | None) -> np.ndarray:
    if half_life is None:
        return np.ones_like(age_days)
    return np.exp2(-age_days / half_life)


def interaction_triplets(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str,
                         config: InteractionConfig | None = None) -> pd.DataFrame:
    """Interaction strength of every (customer, product) pair, from data strictly before ``cutoff``.

    Parameters
    ----------
    tables
        Canonical tables; transactions need ``product_id``; events are used when present.
    cutoff
        The as-of time.
    config
        Type weights, quantity damping, recency half-life, and whether returns cancel purchases.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``product_id``, ``weight`` (> 0), sorted by customer then product.
    """
    config = config or InteractionConfig()
    cutoff = pd.Timestamp(cutoff)
    now = np.datetime64(cutoff, "ns")
    parts = []
    tx = tables[Tables.transactions]
    tx = tx[tx[C.timestamp] < cutoff]
    if len(tx):
        age = (now - tx[C.timestamp].to_numpy(dtype="datetime64[ns]")) / np.timedelta64(1, "D")
        qty = np.abs(tx[C.quantity].to_numpy(dtype=np.float64)) if C.quantity in tx.columns else np.ones(len(tx))
        sign = np.ones(len(tx))
        if C.is_return in tx.columns:
            sign = np.where(returned(tx), -1.0 if config.subtract_returns else 0.0, 1.0)
        units = pd.DataFrame({C.customer_id: tx[C.customer_id].to_numpy(), C.product_id: tx[C.product_id].to_numpy(),
                              "u": sign * qty * _decay(age, config.half_life_days)})
        units = units.groupby([C.customer_id, C.product_id], sort=False)["u"].sum().reset_index()
        units = units[units["u"] > 1e-12]
        units[WEIGHT] = config.weights.get(EventTypes.purchase, 1.0) * _damp(units.pop("u").to_numpy(),
                                                                              config.quantity_damping)
        parts.append(units)
    events = tables.get(Tables.events)
    if events is not None:
        events = events[(events[C.timestamp] < cutoff) & (events[C.event_type] != EventTypes.purchase)]
        if len(events):
            age = (now - events[C.timestamp].to_numpy(dtype="datetime64[ns]")) / np.timedelta64(1, "D")
            type_weight = events[C.event_type].map(config.weights).fillna(0.0).to_numpy(dtype=np.float64)
            ev = pd.DataFrame({C.customer_id: events[C.customer_id].to_numpy(),
                               C.product_id: events[C.product_id].to_numpy(),
                               WEIGHT: type_weight * _decay(age, config.half_life_days)})
            parts.append(ev[ev[WEIGHT] > 0])
    if not parts:
        return pd.DataFrame({C.customer_id: pd.Series([], dtype="str"), C.product_id: pd.Series([], dtype="str"),
                             WEIGHT: pd.Series([], dtype=np.float64)})
    allw = pd.concat(parts, ignore_index=True)
    allw = allw.groupby([C.customer_id, C.product_id], sort=True)[WEIGHT].sum().reset_index()
    allw[C.customer_id] = allw[C.customer_id].astype("str")
    allw[C.product_id] = allw[C.product_id].astype("str")
    return allw


def triplets_to_matrix(triplets: pd.DataFrame, customers: IdMap | None = None,
                       products: IdMap | None = None) -> Interactions:
    """Build the sparse matrix; id maps default to the sorted ids present, pairs outside given maps are dropped."""
    customers = customers or IdMap(np.sort(triplets[C.customer_id].unique()))
    products = products or IdMap(np.sort(triplets[C.product_id].unique()))
    rows = customers.to_internal(triplets[C.customer_id], unknown="missing")
    cols = products.to_internal(triplets[C.product_id], unknown="missing")
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix((triplets[WEIGHT].to_numpy(dtype=np.float32)[keep], (rows[keep], cols[keep])),
                           shape=(len(customers), len(products)), dtype=np.float32)
    matrix.sum_duplicates()
    return Interactions(matrix=matrix, customers=customers, products=products)


def interaction_matrix(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str,
                       config: InteractionConfig | None = None, customers: IdMap | None = None,
                       products: IdMap | None = None) -> Interactions:
    """The customer x product matrix as of ``cutoff`` (see :func:`interaction_triplets`).

    Parameters
    ----------
    customers, products
        Fixed id maps (e.g. a trained model's); by default the sorted ids with any interaction.
    """
    return triplets_to_matrix(interaction_triplets(tables, cutoff, config), customers, products)
