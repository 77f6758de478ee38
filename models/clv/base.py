"""What BG/NBD and Gamma-Gamma share: maximum-likelihood hyperparameters, fitted state and JSON persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from features.exceptions import ClienteleError


class LikelihoodModel:
    """Base of the CLV models: ``__init__`` stores the optimiser settings, ``fit`` sets ``params_``,
    ``log_likelihood_``, ``n_customers_`` and ``converged_``; saving is plain JSON (floats written exactly, so
    predictions round-trip bit for bit).

    Parameters
    ----------
    penalizer
        L2 penalty on the parameters added to the mean negative log-likelihood (0 = plain MLE).
    max_iter
        Iteration cap for each local optimisation.
    tol
        Convergence tolerance of the local optimisations.
    """

    FORMAT: ClassVar[str]
    FORMAT_VERSION: ClassVar[int] = 1
    PARAM_NAMES: ClassVar[tuple[str, ...]]

    def __init__(self, penalizer: float = 0.0, max_iter: int = 2000, tol: float = 1e-12) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    def _params(self) -> dict[str, float]:
        if not hasattr(self, "params_"):
            name = type(self).__name__
            raise ClienteleError(f"{name} is not fitted: call fit(summary) or {name}.load(path)")
        return self.params_

    def to_dict(self) -> dict[str, Any]:
        """Hyperparameters and fitted state as plain JSON-able values."""
        return {
            "format": self.FORMAT,
            "version": self.FORMAT_VERSION,
            "hyperparameters": {"penalizer": self.penalizer, "max_iter": self.max_iter, "tol": self.tol},
            "params": dict(self._params()),
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "converged": self.converged_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Any:
        """Rebuild a fitted model from :meth:`to_dict` output."""
        name = cls.__name__
        if state.get("format") != cls.FORMAT:
            raise ClienteleError(f"not a saved {name} (format {state.get('format')!r})")
        if state.get("version") != cls.FORMAT_VERSION:
            raise ClienteleError(f"saved {name} has version {state.get('version')!r}, expected {cls.FORMAT_VERSION}")
        model = cls(**state["hyperparameters"])
        params = {p: float(state["params"][p]) for p in cls.PARAM_NAMES}
        if not all(np.isfinite(v) and v > 0 for v in params.values()):
            raise ClienteleError(f"saved {name} has invalid parameters {params}")
        model.params_ = params
        model.log_likelihood_ = float(state["log_likelihood"])
        model.n_customers_ = int(state["n_customers"])
        model.converged_ = bool(state["converged"])
        return model

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to the JSON file ``path``; returns it."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ClienteleError
            The file is not a saved model of this class and version.
        """
        path = Path(path)
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClienteleError(f"{path}: cannot read a saved {cls.__name__} ({exc})") from exc
        return cls.from_dict(state)

    def __repr__(self) -> str:
        fitted = "".join(f", {k}_={v:.4g}" for k, v in getattr(self, "params_", {}).items())
        return f"{type(self).__name__}(penalizer={self.penalizer!r}{fitted})"
