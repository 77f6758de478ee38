"""Item-item co-occurrence (implicit's nearest neighbours): cosine, BM25 or TF-IDF weighted."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender
from implicit.utils import ParameterWarning

from features.i18n import message
from models.recommenders.base import Recommender, RecommenderParams, _sparse, _unsparse
from models.recommenders.data import TrainingData


class ItemKNNParams(RecommenderParams):
    """Hyperparameters of :class:`ItemKNN`.

    Attributes
    ----------
    similarity
        ``cosine``, ``bm25`` (Robertson's BM25 weighting of the customers x products matrix first) or ``tfidf``.
    neighbours
        Neighbours kept per product (implicit's ``K``).
    bm25_k1, bm25_b
        BM25 term saturation and length normalisation.
    threads
        Threads of the neighbour search (0: all cores).
    """

    similarity: Literal["cosine", "bm25", "tfidf"] = "cosine"
    neighbours: int = 100
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    threads: int = 0


class ItemKNN(Recommender):
    """Scores a product by its similarity to what the customer bought ("bought together with X")."""

    name = "itemknn"
    Params = ItemKNNParams

    def _fit(self, data: TrainingData) -> None:
        p = self.params
        self.matrix_ = self._input_matrix(data)
        if p.similarity == "bm25":
            model = BM25Recommender(K=p.neighbours, K1=p.bm25_k1, B=p.bm25_b, num_threads=p.threads)
        elif p.similarity == "tfidf":
            model = TFIDFRecommender(K=p.neighbours, num_threads=p.threads)
        else:
            model = CosineRecommender(K=p.neighbours, num_threads=p.threads)
        with warnings.catch_warnings():
            # BM25 weighting hands implicit a COO matrix, which it converts itself (and warns about).
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(self.matrix_, show_progress=False)
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_history(self.matrix_[users])

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        scores = (sp.csr_matrix(rows, dtype=np.float32) @ self.similarity_).toarray()
        scores[scores <= 0] = -np.inf
        return scores

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        scores = self.similarity_[items].toarray()
        scores[scores <= 0] = -np.inf
        return scores

    @property
    def _relation(self) -> sp.csr_matrix:
        """Contribution of a bought product (row) to a recommended one (column): the similarity itself."""
        return self.similarity_

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._explain_history(self.matrix_[users], items)

    def _explain_history(self, rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self._anchor_reasons(sp.csr_matrix(rows), items, self._relation, "rec.bought_together",
                                    message("rec.similar_baskets"))

    def _explain_similar(self, items: np.ndarray, similar: np.ndarray) -> np.ndarray:
        names = self.catalog_.names[items]
        text = np.array([message("rec.bought_together", product=name) for name in names], dtype=object)
        return np.where(similar >= 0, text[:, None], "").astype(object)

    def _state(self) -> dict[str, np.ndarray]:
        return {**_sparse("matrix", self.matrix_), **_sparse("similarity", self.similarity_)}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.matrix_ = _unsparse("matrix", state)
        self.similarity_ = _unsparse("similarity", state)


class BM25(ItemKNN):
    """Item-item neighbours on the BM25-weighted matrix (down-weights customers who buy everything)."""

    name = "bm25"

    def __init__(self, **params: Any):
        params.setdefault("similarity", "bm25")
        super().__init__(**params)
