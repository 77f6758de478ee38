"""Immutable maps between external ids and the internal integer indices models work on."""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np
import pandas as pd

from features.exceptions import DataError

UnknownPolicy = Literal["raise", "skip", "missing"]


def _as_text(values: Iterable[object]) -> pd.Series:
    if not isinstance(values, (pd.Series, pd.Index, np.ndarray, list, tuple)):
        values = list(values)
    return pd.Series(values, dtype="str").reset_index(drop=True)


class IdMap:
    """External ids <-> internal indices 0..n-1, built once at training time and saved with the model.

    Parameters
    ----------
    external_ids
        Distinct external ids in internal-index order.

    Examples
    --------
    >>> m = IdMap.from_values(["b", "a", "b"])
    >>> m.external_ids.tolist(), m.to_internal(["a", "b"]).tolist()
    (['b', 'a'], [1, 0])
    """

    def __init__(self, external_ids: Iterable[object]):
        ids = pd.Index(_as_text(external_ids))
        if ids.has_duplicates:
            raise DataError(f"IdMap: duplicate external id '{ids[ids.duplicated()][0]}'")
        self._index = ids

    @classmethod
    def from_values(cls, values: Iterable[object]) -> "IdMap":
        """Map of the distinct values in order of first appearance."""
        return cls(_as_text(values).unique())

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, external_id: object) -> bool:
        return str(external_id) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __hash__(self) -> int:  # immutable value object
        return hash(tuple(self._index))

    @property
    def size(self) -> int:
        return len(self._index)

    @property
    def external_ids(self) -> np.ndarray:
        """External ids in internal-index order."""
        return self._index.to_numpy(dtype=object)

    def to_internal(self, ids: Iterable[object], unknown: UnknownPolicy = "raise") -> np.ndarray:
        """Internal indices of ``ids``.

        Parameters
        ----------
        ids
            External ids.
        unknown
            ``raise``: a DataError naming the first unknown id; ``skip``: drop unknown ids;
            ``missing``: -1 in their place.

        Returns
        -------
        numpy.ndarray of int64
        """
        values = _as_text(ids)
        codes = self._index.get_indexer(values)
        if (codes < 0).any():
            if unknown == "raise":
                raise DataError(f"unknown id '{values[codes < 0].iloc[0]}'")
            if unknown == "skip":
                codes = codes[codes >= 0]
        return codes.astype(np.int64)

    def to_external(self, internal: Iterable[int]) -> np.ndarray:
        """External ids of internal indices."""
        return self._index.to_numpy(dtype=object)[np.asarray(internal, dtype=np.int64)]

    def add(self, new_ids: Iterable[object]) -> "IdMap":
        """A new map with ``new_ids`` not yet known appended (existing indices unchanged)."""
        fresh = pd.Index(_as_text(new_ids)).unique()
        fresh = fresh[~fresh.isin(self._index)]
        return IdMap(self._index.append(fresh))
