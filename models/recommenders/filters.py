"""Business filters applied on every recommendation path: already bought, stock, category and price band."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from features.exceptions import DataError
from models.recommenders.data import Catalog


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
        Keep only products in these categories (``None``: any category).
    exclude_categories
        Drop products in these categories.
    price_min, price_max
        Keep only products whose price is in this band (inclusive); a product without a known price is
        dropped when a band is set.
    exclude_products
        Product ids never to return (e.g. what is already in the basket).
    """

    exclude_bought: bool | None = None
    in_stock_only: bool = True
    categories: tuple[str, ...] | None = None
    exclude_categories: tuple[str, ...] = field(default=())
    price_min: float | None = None
    price_max: float | None = None
    exclude_products: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", _texts(self.categories))
        object.__setattr__(self, "exclude_categories", _texts(self.exclude_categories) or ())
        object.__setattr__(self, "exclude_products", _texts(self.exclude_products) or ())
        for name in ("price_min", "price_max"):
            value = getattr(self, name)
            if value is not None and not np.isfinite(float(value)):
                raise DataError(f"filters: {name} must be a finite number, got {value!r}")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise DataError(f"filters: price_min ({self.price_min}) is above price_max ({self.price_max})")

    def allowed(self, catalog: Catalog) -> np.ndarray:
        """Boolean mask over the catalogue's internal product indices of what these filters let through.

        Parameters
        ----------
        catalog
            The fitted model's catalogue.

        Returns
        -------
        numpy.ndarray of bool, one per product
        """
        keep = np.ones(catalog.size, dtype=bool)
        if self.in_stock_only:
            keep &= catalog.in_stock
        if self.categories is not None or self.exclude_categories:
            names = np.append(catalog.categories.astype(object), None)  # code -1 -> None
            product_category = names[catalog.category]
            if self.categories is not None:
                keep &= np.isin(product_category, np.array(self.categories, dtype=object))
            if self.exclude_categories:
                keep &= ~np.isin(product_category, np.array(self.exclude_categories, dtype=object))
        if self.price_min is not None or self.price_max is not None:
            price = catalog.price
            known = np.isfinite(price)
            keep &= known
            if self.price_min is not None:
                keep &= np.where(known, price, -np.inf) >= self.price_min
            if self.price_max is not None:
                keep &= np.where(known, price, np.inf) <= self.price_max
        if self.exclude_products:
            codes = catalog.products.to_internal(self.exclude_products, unknown="skip")
            keep[codes] = False
        return keep
