"""Bayesian personalised ranking (Rendle et al. 2009), via implicit: pairwise "bought beats not bought"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking

from features.i18n import message
from models.recommenders.base import InputWeighting, Recommender, RecommenderParams, _sparse, _unsparse
from models.recommenders.data import TrainingData


class BPRParams(RecommenderParams):
    """Hyperparameters of :class:`BPR`.

    Attributes
    ----------
    factors
        Latent dimensions (implicit adds one for the product bias).
    learning_rate, regularization
        SGD step and L2 penalty.
    iterations
        Epochs over the positive pairs.
    threads
        Keep 1: implicit's BPR updates factors from several threads without locks (Hogwild), which makes a
        multi-threaded fit differ from run to run.
    """

    factors: int = 64
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 100
    threads: int = 1
    input: InputWeighting = "binary"


class BPR(Recommender):
    """Pairwise-ranking matrix factorisation; new customers are the mean of their products' vectors."""

    name = "bpr"
    Params = BPRParams
    default_reason = message("rec.similar_taste")

    def _fit(self, data: TrainingData) -> None:
        p = self.params
        self.matrix_ = self._input_matrix(data)
        model = BayesianPersonalizedRanking(factors=p.factors, learning_rate=p.learning_rate,
                                            regularization=p.regularization, iterations=p.iterations,
                                            num_threads=p.threads, random_state=p.random_state)
        model.fit(self.matrix_, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        rows = sp.csr_matrix(rows, dtype=np.float32)
        weight = np.asarray(rows.sum(axis=1)).ravel()
        users = (rows @ self.item_factors_) / np.maximum(weight, np.finfo(np.float32).tiny)[:, None]
        # The last factor is the product bias: the folded-in customer takes it at full weight, as fitted ones do.
        users[:, -1] = 1.0
        return users @ self.item_factors_.T

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        vectors = self.item_factors_[:, :-1]
        normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.finfo(np.float32).tiny)
        return normed[items] @ normed.T

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_,
                **_sparse("matrix", self.matrix_)}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.user_factors_, self.item_factors_ = state["user_factors"], state["item_factors"]
        self.matrix_ = _unsparse("matrix", state)
