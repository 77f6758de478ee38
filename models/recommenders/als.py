"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky 2008), via implicit."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from features.exceptions import ConfigError
from features.i18n import message
from models.recommenders.base import Recommender, RecommenderParams, _sparse, _unsparse
from models.recommenders.data import TrainingData


class ALSParams(RecommenderParams):
    """Hyperparameters of :class:`ALS`.

    Attributes
    ----------
    factors
        Latent dimensions.
    regularization
        L2 penalty on the factors.
    alpha
        Confidence scale of an interaction (implicit's ``alpha``: confidence = alpha x strength).
    iterations
        ALS sweeps.
    threads
        Solver threads (0: all cores); each customer's solve is independent, so the result does not depend on it.
    device
        ``cpu``, ``cuda`` (implicit's GPU solver: the same model, not the same digits) or ``auto`` (the GPU when
        implicit was built with CUDA and sees one).
    """

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15
    threads: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ALS(Recommender):
    """Customers and products as vectors whose dot product predicts interest; new customers are folded in by
    one least-squares solve against the fitted product vectors."""

    name = "als"
    Params = ALSParams
    default_reason = message("rec.similar_taste")

    def _fit(self, data: TrainingData) -> None:
        self.matrix_ = self._input_matrix(data)
        if _device(self.params.device) == "cuda":
            model = self._gpu_model()
            model.fit(self.matrix_, show_progress=False)
            model = model.to_cpu()
        else:
            # OpenBLAS threads fight implicit's own threads and slow ALS down many times over.
            with threadpool_limits(1, "blas"):
                model = self._model()
                model.fit(self.matrix_, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _model(self) -> AlternatingLeastSquares:
        p = self.params
        return AlternatingLeastSquares(factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                                       iterations=p.iterations, num_threads=p.threads,
                                       random_state=p.random_state)

    def _gpu_model(self) -> Any:
        from implicit.gpu.als import AlternatingLeastSquares as GpuALS

        p = self.params
        return GpuALS(factors=p.factors, regularization=p.regularization, alpha=p.alpha, iterations=p.iterations,
                      random_state=p.random_state)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        with threadpool_limits(1, "blas"):
            model = self._model()
            model.item_factors = self.item_factors_
            model.user_factors = np.zeros((1, self.params.factors), dtype=np.float32)
            factors = model.recalculate_user(np.arange(rows.shape[0]), sp.csr_matrix(rows, dtype=np.float32))
        return np.asarray(factors).reshape(rows.shape[0], -1) @ self.item_factors_.T

    def _normed(self) -> np.ndarray:
        """Unit-length product vectors, worked out once per fitted (or loaded) model: reasons and similar
        products ask for them once per batch of customers."""
        cached = self.__dict__.get("_normed_factors")
        if cached is None or cached[0] is not self.item_factors_:
            norms = np.linalg.norm(self.item_factors_, axis=1, keepdims=True)
            cached = (self.item_factors_, self.item_factors_ / np.maximum(norms, np.finfo(np.float32).tiny))
            self.__dict__["_normed_factors"] = cached
        return cached[1]

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        normed = self._normed()
        return normed[items] @ normed.T

    def _relation(self, bought: np.ndarray, targets: np.ndarray) -> np.ndarray:
        normed = self._normed()
        return normed[bought] @ normed[targets].T

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._explain_history(self.matrix_[users], items)

    def _explain_history(self, rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self._anchor_reasons(sp.csr_matrix(rows), items, self._relation, "rec.because_bought",
                                    self.default_reason)

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_,
                **_sparse("matrix", self.matrix_)}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.user_factors_, self.item_factors_ = state["user_factors"], state["item_factors"]
        self.matrix_ = _unsparse("matrix", state)


def _device(device: str) -> str:
    """``auto`` resolved: ``cuda`` when implicit was built with CUDA and sees a GPU, else ``cpu``.

    Raises
    ------
    ConfigError
        ``cuda`` was asked for and implicit has no GPU solver here.
    """
    import implicit.gpu

    if device == "cpu":
        return "cpu"
    if not implicit.gpu.HAS_CUDA:
        if device == "cuda":
            raise ConfigError("recommender 'als': device 'cuda' needs implicit built with CUDA and a GPU; "
                              "use device 'auto' or 'cpu'")
        return "cpu"
    return "cuda"
