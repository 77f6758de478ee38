"""Business filters applied on every recommendation path: already bought, stock (overall and per store), category,
price band, and the channel that asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from features.exceptions import DataError
from models.recommenders.data import Catalog


CHANNELS = ("store", "online", "app")
IN_STORE = "in_store"
ORDER_ONLINE = "order_online"
AVAILABILITY = (IN_STORE, ORDER_ONLINE)


def _texts(values: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return (values,)
    return tuple(str(v) for v in values)


@dataclass(frozen=True)
class Filters:
    """What a recommendation may contain.

    Parameters
    ----------
    exclude_bought
        Drop products the customer already bought; ``None`` takes the model's default (the industry preset's
        ``recommend.exclude_bought``: repeat purchase matters in beauty and grocery, rarely in jewellery).
    in_stock_only
        Drop products the catalogue marks as out of stock.
    categories
        Keep only products in these categories (``None`` or empty: any category).
    exclude_categories
        Drop products in these categories.
    price_min, price_max
        Keep only products whose price is in this band (inclusive); a product without a known price is
        dropped when a band is set.
    exclude_products
        Product ids never to return (e.g. what is already in the basket).
    buy_again_share
        Share of a personal list given to products the customer bought before (buy again), the rest to products
        new to them (explore): ``round(share * n)`` places, the best of each kind, kept in rank order; when one
        kind runs short the other fills its places. ``None`` takes the model's default (the industry preset's
        ``recommend.buy_again_share``; ``None`` there: the mix the reranker ranked). ``exclude_bought`` wins over
        it.
    channel
        The channel asking (``store``, ``online``, ``app``): products its customers buy more through it than
        through the others rank higher, those they rarely buy through it lower (the product's channel mix learned
        from the history, :mod:`models.recommenders.policy`); ``None``: no channel preference.
    store_id
        The store whose shelf counts (the store associate's tablet, "reserve online, try in store"): see
        ``availability``. Without an inventory table, or for a store it does not list, the store's stock is the
        catalogue's ``in_stock``.
    availability
        ``in_store`` (default): only products the store has in stock; ``order_online``: products it does not have
        stay, their reason marked "order online" (code ``rec.order_online``). Ignored without ``store_id``.
    new_only
        Keep only new arrivals (launched within the model's ``new_arrival_days`` before its cutoff, or never
        sold): "new arrivals for you".
    new_arrival_share
        Share of a personal list kept for new arrivals: at least ``round(share * n)`` places go to the best new
        arrivals of the customer's list when it has them, the rest stays in rank order. ``None`` takes the
        model's default (the preset's ``recommend.new_arrival_share``); 0 leaves the list as ranked.
    """

    exclude_bought: bool | None = None
    in_stock_only: bool = True
    categories: tuple[str, ...] | None = None
    exclude_categories: tuple[str, ...] = field(default=())
    price_min: float | None = None
    price_max: float | None = None
    exclude_products: tuple[str, ...] = field(default=())
    buy_again_share: float | None = None
    channel: str | None = None
    store_id: str | None = None
    availability: str = IN_STORE
    new_only: bool = False
    new_arrival_share: float | None = None

    def __post_init__(self) -> None:
        # No category named is no category filter (an empty list from a query string is not "nothing").
        object.__setattr__(self, "categories", _texts(self.categories) or None)
        object.__setattr__(self, "exclude_categories", _texts(self.exclude_categories) or ())
        object.__setattr__(self, "exclude_products", _texts(self.exclude_products) or ())
        for name in ("price_min", "price_max"):
            value = getattr(self, name)
            if value is not None and not np.isfinite(float(value)):
                raise DataError(f"filters: {name} must be a finite number, got {value!r}")
        if self.buy_again_share is not None and not 0.0 <= float(self.buy_again_share) <= 1.0:
            raise DataError(f"filters: buy_again_share must be between 0 and 1, got {self.buy_again_share!r}")
        if self.channel is not None and self.channel not in CHANNELS:
            raise DataError(f"filters: channel must be one of {', '.join(CHANNELS)}, got {self.channel!r}")
        if self.availability not in AVAILABILITY:
            raise DataError(f"filters: availability must be one of {', '.join(AVAILABILITY)}, "
                            f"got {self.availability!r}")
        if self.store_id is not None:
            object.__setattr__(self, "store_id", str(self.store_id))
        if self.new_arrival_share is not None and not 0.0 <= float(self.new_arrival_share) <= 1.0:
            raise DataError(f"filters: new_arrival_share must be between 0 and 1, got {self.new_arrival_share!r}")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise DataError(f"filters: price_min ({self.price_min}) is above price_max ({self.price_max})")

    @property
    def plain(self) -> bool:
        """No category, price, product, channel, store or new-arrival filter (only stock and already bought)."""
        return (self.categories is None and not self.exclude_categories and self.price_min is None
                and self.price_max is None and not self.exclude_products and self.channel is None
                and self.store_id is None and not self.new_only)

    def allowed(self, catalog: Catalog) -> np.ndarray:
        """Boolean mask over the catalogue's internal product indices of what these filters let through
        (:func:`models.recommenders.policy.allowed`, the one implementation of the filters).

        Parameters
        ----------
        catalog
            The fitted model's catalogue.

        Returns
        -------
        numpy.ndarray of bool, one per product
        """
        from models.recommenders.policy import allowed

        return allowed(self, catalog.table(), np.arange(catalog.size))
