"""EASE (Steck 2019): a closed-form item-item linear model, capped to the most popular products when the
catalogue is large (its cost is a dense products x products inverse)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from features.exceptions import ConfigError
from features.i18n import message
from models.recommenders.base import InputWeighting, Recommender, RecommenderParams, _sparse, _unsparse
from models.recommenders.data import TrainingData


class EASEParams(RecommenderParams):
    """Hyperparameters of :class:`EASE`.

    Attributes
    ----------
    l2
        Ridge penalty on the item-item weights (Steck's lambda); larger for sparser data.
    max_items
        Only this many most-bought products are modelled (memory is max_items ** 2 floats); others are not
        scored by EASE (the top-up and other generators cover them).
    device
        Where the inverse is worked out: ``cpu`` (LAPACK), ``cuda`` (torch on the GPU) or ``auto`` (the GPU when
        torch sees one). On the CPU, LAPACK's Cholesky inverse is faster than torch's at one thread.
    """

    l2: float = 250.0
    max_items: int = 15_000
    input: InputWeighting = "binary"
    device: Literal["auto", "cpu", "cuda"] = "auto"


class EASE(Recommender):
    """Each product's score is a learned weighted sum of the customer's other products (zero diagonal)."""

    name = "ease"
    Params = EASEParams
    default_reason = message("rec.similar_baskets")

    def _fit(self, data: TrainingData) -> None:
        p = self.params
        matrix = self._input_matrix(data)
        counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
        kept = np.flatnonzero(counts > 0)
        if len(kept) > p.max_items:
            kept = np.sort(kept[np.lexsort((kept, -counts[kept]))[:p.max_items]])
        self.items_ = kept.astype(np.int64)
        self.matrix_ = sp.csr_matrix(matrix[:, kept], dtype=np.float32)
        # Single precision: the ridge on the diagonal keeps the Gram matrix well conditioned, and float32 halves
        # the memory and more than halves the time of the dominant cubic step.
        gram = (self.matrix_.T @ self.matrix_).toarray().astype(np.float32, copy=False)
        gram[np.diag_indices_from(gram)] += p.l2
        precision = _spd_inverse(gram, _device(p.device))
        del gram
        # Row-major: scoring multiplies customers' sparse rows by it, and scipy copies a column-major matrix
        # (what LAPACK returns) to row-major on every product, 0.4 GB a batch at 10,000 products. LAPACK's
        # inverse is exactly symmetric (one triangle mirrored), so its transpose is the same numbers, row-major,
        # without a copy; the weights are worked out in place (B = -P / diag(P), zero diagonal).
        weights = precision if precision.flags.c_contiguous else precision.T
        weights = np.ascontiguousarray(weights, dtype=np.float32)
        np.divide(weights, -np.diag(weights).copy(), out=weights)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights_ = weights

    def _scatter(self, partial: np.ndarray) -> np.ndarray:
        scores = np.full((partial.shape[0], self.catalog_.size), -np.inf, dtype=np.float32)
        scores[:, self.items_] = partial
        return scores

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._scatter(self.matrix_[users] @ self.weights_)

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        return self._scatter(sp.csr_matrix(rows, dtype=np.float32)[:, self.items_] @ self.weights_)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        local = np.searchsorted(self.items_, items)
        found = (local < len(self.items_)) & (self.items_[np.minimum(local, len(self.items_) - 1)] == items)
        partial = np.zeros((len(items), len(self.items_)), dtype=np.float32)
        partial[found] = self.weights_[local[found]]
        partial[partial <= 0] = -np.inf
        return self._scatter(partial)

    def _relation(self, bought: np.ndarray, targets: np.ndarray) -> np.ndarray:
        local_b = np.searchsorted(self.items_, bought)
        local_t = np.searchsorted(self.items_, targets)
        ok_b = (local_b < len(self.items_)) & (self.items_[np.minimum(local_b, len(self.items_) - 1)] == bought)
        ok_t = (local_t < len(self.items_)) & (self.items_[np.minimum(local_t, len(self.items_) - 1)] == targets)
        block = np.zeros((len(bought), len(targets)), dtype=np.float32)
        block[np.ix_(ok_b, ok_t)] = self.weights_[np.ix_(local_b[ok_b], local_t[ok_t])]
        return block

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._explain_history(self._full_rows(users), items)

    def _full_rows(self, users: np.ndarray) -> sp.csr_matrix:
        rows = self.matrix_[users].tocoo()
        return sp.csr_matrix((rows.data, (rows.row, self.items_[rows.col])), shape=(len(users), self.catalog_.size))

    def _explain_history(self, rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self._anchor_reasons(sp.csr_matrix(rows), items, self._relation, "rec.bought_together",
                                    self.default_reason)

    def _state(self) -> dict[str, np.ndarray]:
        return {"items": self.items_, "weights": self.weights_, **_sparse("matrix", self.matrix_)}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.items_, self.weights_ = state["items"], np.ascontiguousarray(state["weights"])
        self.matrix_ = _unsparse("matrix", state)


def _device(device: str) -> str:
    """``auto`` resolved: ``cuda`` when torch is installed and sees a GPU, else ``cpu``.

    Raises
    ------
    ConfigError
        ``cuda`` was asked for and torch sees no GPU here.
    """
    if device == "cpu":
        return "cpu"
    found = importlib.util.find_spec("torch") is not None
    if found:
        import torch

        found = torch.cuda.is_available()
    if not found and device == "cuda":
        raise ConfigError("recommender 'ease': device 'cuda' needs torch and a GPU; use device 'auto' or 'cpu'")
    return "cuda" if found else "cpu"


def _spd_inverse(matrix: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Inverse of a symmetric positive definite float32 matrix by Cholesky (half the work of a general inverse):
    LAPACK on the CPU, torch on any other device (``cuda``)."""
    if device != "cpu":
        return _torch_spd_inverse(matrix, device)
    # The matrix is symmetric: its transpose is the same numbers in Fortran order, which LAPACK factorises in
    # place instead of in a copy.
    factor, info = lapack.spotrf(matrix.T if matrix.flags.c_contiguous else matrix, lower=False, clean=True,
                                 overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: the regularised Gram matrix is not positive definite (info {info})")
    upper, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky inverse failed (info {info})")
    return _mirror_upper(upper)


def _mirror_upper(upper: np.ndarray, block: int = 256) -> np.ndarray:
    """The symmetric matrix whose upper triangle ``upper`` holds (what dpotri fills), completed in place.

    Block by block: a whole-matrix ``upper + upper.T`` reads one operand across the rows of the other, a cache
    miss per element, and took a quarter of a 7,500-product fit's inverse."""
    n = upper.shape[0]
    for i in range(0, n, block):
        top = upper[i:i + block, i:i + block]
        strict = np.triu(top, 1)
        top[...] = np.triu(top) + strict.T
        for j in range(i + block, n, block):
            upper[j:j + block, i:i + block] = upper[i:i + block, j:j + block].T
    return upper


def _torch_spd_inverse(matrix: np.ndarray, device: str) -> np.ndarray:
    """:func:`_spd_inverse` by torch on ``device`` (the GPU: a 10,000-product inverse in well under a second)."""
    import torch

    gram = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)).to(device)
    factor, info = torch.linalg.cholesky_ex(gram)
    if int(info) != 0:
        raise np.linalg.LinAlgError(f"EASE: the regularised Gram matrix is not positive definite (info {int(info)})")
    del gram
    return torch.cholesky_inverse(factor).cpu().numpy()
