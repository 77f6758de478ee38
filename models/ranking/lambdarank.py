"""LightGBM LambdaRank over one group of candidates per customer, early-stopped on held-out customers."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
from pydantic import Field

from features.exceptions import DataError
from features.memory import release_free_memory
from models.ranking.compiled import CompiledBooster
from models.recommenders.config import Params
from models.tabular import prediction_threads

# Seeds of the ensemble's members are this far apart (member 0 keeps the model's own seed).
_MEMBER_SEED_STEP = 1000
# Bytes a boosting member holds per training row besides its binned values (gradient, hessian, score, index).
_MEMBER_ROW_BYTES = 24
# Between the members' LightGBM texts in the saved reranker (a line no LightGBM model text holds).
_MEMBER_SEPARATOR = "\n# clientele: next reranker member\n"
# Rows predicted with LightGBM before the members are compiled to machine code (models/ranking/compiled.py: the
# same scores, bit for bit, in a fraction of the time). Compiling a member takes about as long as LightGBM
# predicting a few hundred thousand rows with it: a small fit never compiles, reranking every customer once.
COMPILE_AFTER_ROWS = 1_000_000


class RankerParams(Params):
    """Hyperparameters of :class:`LambdaRanker` (LightGBM names where they exist).

    Every default lives here; the ``clientele.ranker`` section of configs/recommender.yaml overrides what it names.

    Attributes
    ----------
    objective
        ``lambdarank`` (LambdaMART, optimises NDCG directly), ``rank_xendcg`` (cross-entropy surrogate of
        NDCG; faster per round) or ``binary`` (each candidate's purchase probability on its own; early stopping
        still watches NDCG per customer).
    n_estimators
        Most boosting rounds; early stopping on held-out customers usually stops sooner.
    learning_rate, num_leaves, min_child_samples, feature_fraction, bagging_fraction, bagging_freq, lambda_l2
        LightGBM's tree and sampling settings.
    truncation_level
        LambdaRank looks at pairs involving the top this many of each group (``lambdarank_truncation_level``).
    eval_at
        NDCG cut-off watched by early stopping.
    early_stopping_rounds
        Rounds without improvement on the held-out customers before stopping.
    validation_share
        Share of customers (groups) held out for early stopping.
    threads
        LightGBM training threads (0: all cores); predictions use every core (the scores are the same).
    ensemble
        Boosters averaged, each with its own seed and its own held-out customers for early stopping: one
        booster's ranking moves with its seed (on Online Retail by up to 0.010 NDCG@10 between seeds); the mean
        of a few moves less.
    side_by_side_gb
        Memory the members boosting at once may hold together (GB; a member holds its binned rows and their
        gradients, about a byte per value and 24 per row): past it fewer boost at once, down to one at a time.
        The boosters are the same either way, only the time changes.
    """

    objective: Literal["lambdarank", "rank_xendcg", "binary"] = "lambdarank"
    n_estimators: int = 400
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_child_samples: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    truncation_level: int = 30
    eval_at: int = 10
    early_stopping_rounds: int = 20
    validation_share: float = 0.15
    # One is steadier than OpenMP's busy waiting on a shared 2-core box; raise it on a machine of its own.
    threads: int = 1
    ensemble: int = Field(1, ge=1)
    side_by_side_gb: float = Field(2.0, ge=0)


class LambdaRanker:
    """Learns to order each customer's candidates so that what they go on to buy comes first.

    Parameters
    ----------
    params
        Hyperparameters.
    random_state
        Seed of LightGBM's sampling and of the held-out split.
    """

    def __init__(self, params: RankerParams | None = None, random_state: int = 0):
        self.params = params or RankerParams()
        self.random_state = random_state
        self._forget_compiled()

    def _forget_compiled(self) -> None:
        # The members compiled to machine code (None: not yet, False: not available) and the rows predicted so far.
        self._compiled: list[CompiledBooster] | bool | None = None
        self._predicted_rows = 0
        self._compiling = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Compiled code belongs to this process (a pickled ranker compiles again where it predicts).
        return {k: v for k, v in self.__dict__.items() if k not in ("_compiled", "_predicted_rows", "_compiling")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._forget_compiled()

    def _lgb_params(self) -> dict[str, Any]:
        p = self.params
        return {
            "objective": p.objective, "metric": "ndcg", "eval_at": [p.eval_at],
            "learning_rate": p.learning_rate, "num_leaves": p.num_leaves, "min_child_samples": p.min_child_samples,
            "feature_fraction": p.feature_fraction, "bagging_fraction": p.bagging_fraction,
            "bagging_freq": p.bagging_freq, "lambda_l2": p.lambda_l2,
            "lambdarank_truncation_level": p.truncation_level, "num_threads": p.threads,
            # Same data and seed, same model: row-wise histograms and deterministic mode make LightGBM repeatable.
            "seed": self.random_state, "deterministic": True, "force_row_wise": True, "verbosity": -1,
        }

    def fit(self, features: np.ndarray, labels: np.ndarray, groups: np.ndarray, feature_names: list[str],
            categorical: list[str] | None = None, held_out_by: np.ndarray | None = None) -> "LambdaRanker":
        """Fit on candidates sorted by group.

        Parameters
        ----------
        features
            (rows, features) float array; NaN is missing.
        labels
            1 where the customer bought the candidate in the label window, else 0.
        groups
            Group (customer) id of every row; rows of one group are contiguous.
        feature_names
            Column names of ``features``.
        categorical
            Names of integer-coded categorical columns.
        held_out_by
            Per row, the key whose groups are held out together for early stopping (the customer, when one
            customer has a group in several label windows: overlapping windows share purchases, and a customer on
            both sides would let early stopping watch what the model was trained on). ``None``: each group alone.

        Returns
        -------
        self

        Raises
        ------
        DataError
            No group has a positive label (nothing to learn from).
        """
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        sizes = np.diff(np.r_[starts, len(groups)])
        positive = np.add.reduceat(labels.astype(np.float64), starts) > 0
        if not positive.any():
            raise DataError("reranker: no customer in the label window bought any of their candidates")
        # Groups without a purchase among their candidates give LambdaRank no pair to learn from.
        keep_group = positive
        keys = None if held_out_by is None else np.unique(np.asarray(held_out_by)[starts], return_inverse=True)[1]
        seeds = [self.random_state + _MEMBER_SEED_STEP * member for member in range(self.params.ensemble)]
        building = threading.Lock()
        # What building the candidates freed goes back to the OS before the members' datasets are built.
        release_free_memory()

        def member(seed: int) -> lgb.Booster:
            return self._fit_member(features, labels, sizes, keep_group, keys, feature_names, categorical, seed,
                                    building)

        # Members boost side by side, each on its own ``threads`` (LightGBM lets go of the GIL while it boosts):
        # each is the booster it would be alone, bit for bit, in the time of fewer.
        with ThreadPoolExecutor(max_workers=self._side_by_side(features.shape)) as pool:
            self.boosters_ = list(pool.map(member, seeds))
        # The members' datasets and training state were freed in their threads' arenas, which glibc keeps.
        release_free_memory()
        self.booster_ = self.boosters_[0]
        self.feature_names_ = list(feature_names)
        self._forget_compiled()
        return self

    def _side_by_side(self, shape: tuple[int, int] = (0, 0)) -> int:
        """Members trained at once: as many as the cores hold at ``threads`` each (one at a time on all cores),
        and as the memory budget ``side_by_side_gb`` holds for training rows of ``shape``."""
        threads = self.params.threads
        if threads <= 0:
            return 1
        rows, columns = shape
        member = rows * (columns + _MEMBER_ROW_BYTES)
        fit = int(self.params.side_by_side_gb * 1e9 // member) if member else self.params.ensemble
        return max(1, min(self.params.ensemble, prediction_threads() // threads, fit))

    def _fit_member(self, features: np.ndarray, labels: np.ndarray, sizes: np.ndarray, keep_group: np.ndarray,
                    group_keys: np.ndarray | None, feature_names: list[str], categorical: list[str] | None,
                    seed: int, building: threading.Lock | None = None) -> lgb.Booster:
        """One booster, early-stopped on its own random share of the customers. Its datasets are built under
        ``building`` (one member's copy of the rows at a time: memory stays that of one member)."""
        rng = np.random.default_rng(seed)
        if group_keys is None:
            held_out = rng.random(len(sizes)) < self.params.validation_share
        else:
            held_out = (rng.random(group_keys.max() + 1) < self.params.validation_share)[group_keys]
        if (keep_group & ~held_out).sum() < 1 or (keep_group & held_out).sum() < 1:
            held_out[:] = False
        row_group = np.repeat(np.arange(len(sizes)), sizes)
        train_rows = (keep_group & ~held_out)[row_group]
        valid_rows = (keep_group & held_out)[row_group]
        params = {**self._lgb_params(), "seed": seed}
        callbacks = []
        valid_sets = []
        with building or contextlib.nullcontext():
            # Built here with the very parameters lgb.train would build them with (the seed draws the rows
            # that place the bin edges), so the rows' copies are freed before the lock is.
            train = lgb.Dataset(features[train_rows], labels[train_rows], group=sizes[keep_group & ~held_out],
                                feature_name=feature_names, categorical_feature=categorical or [],
                                free_raw_data=True, params=params).construct()
            if valid_rows.any():
                valid = lgb.Dataset(features[valid_rows], labels[valid_rows], group=sizes[keep_group & held_out],
                                    feature_name=feature_names, categorical_feature=categorical or [],
                                    reference=train, params=params).construct()
                valid_sets = [valid]
                callbacks = [lgb.early_stopping(self.params.early_stopping_rounds, verbose=False)]
        booster = lgb.train(params, train, num_boost_round=self.params.n_estimators, valid_sets=valid_sets,
                            callbacks=callbacks)
        # Keep only the rounds up to the best iteration, so the saved text is the model that predicts.
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration or -1))

    def predict(self, features: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Ranking scores (higher first) of candidate rows: the mean of the members' scores, on ``threads``
        threads (``None``: every core; each row is scored on its own, so the scores are the same). Past
        ``COMPILE_AFTER_ROWS`` rows the members' compiled code scores them, bit-identically."""
        threads = threads or prediction_threads()
        compiled = self._compiled_members(len(features))
        if compiled:
            return self._mean(lambda member: compiled[member].predict(features, threads))
        return self._mean(lambda member: self.boosters_[member].predict(features, num_threads=threads))

    def _compiled_members(self, rows: int) -> list[CompiledBooster] | None:
        """The members' compiled code once ``COMPILE_AFTER_ROWS`` rows were predicted (compiled here by the first
        thread past it; the others go on with LightGBM meanwhile), else None."""
        self._predicted_rows += rows
        if self._compiled is None and self._predicted_rows > COMPILE_AFTER_ROWS \
                and self._compiling.acquire(blocking=False):
            try:
                if self._compiled is None:
                    members = [CompiledBooster.compile(b) for b in self.boosters_]
                    self._compiled = members if all(members) else False
            finally:
                self._compiling.release()
        return self._compiled or None

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per-feature contributions (SHAP values, LightGBM's ``pred_contrib``) of each row's score; the last
        column is the expected value (the members' mean: contributions add up like the scores)."""
        return self._mean(lambda member: self.boosters_[member].predict(features, pred_contrib=True,
                                                                        num_threads=prediction_threads()))

    def _mean(self, score: Any) -> np.ndarray:
        """The mean over members of ``score(member index)``, added up in the members' order."""
        total = score(0)
        for member in range(1, len(self.boosters_)):
            total = total + score(member)
        return total / len(self.boosters_) if len(self.boosters_) > 1 else total

    def importance(self) -> dict[str, float]:
        """Total gain of each feature (over every member)."""
        gain = sum(b.feature_importance(importance_type="gain") for b in self.boosters_)
        return dict(sorted(zip(self.feature_names_, gain.tolist()), key=lambda kv: -kv[1]))

    def num_trees(self) -> int:
        """Trees over every member."""
        return sum(b.num_trees() for b in self.boosters_)

    def to_text(self) -> str:
        """The members' LightGBM model texts, one after another (one member: LightGBM's own text)."""
        return _MEMBER_SEPARATOR.join(b.model_to_string() for b in self.boosters_)

    @classmethod
    def from_text(cls, text: str, params: RankerParams | None = None, random_state: int = 0) -> "LambdaRanker":
        ranker = cls(params, random_state)
        ranker.boosters_ = [lgb.Booster(model_str=part) for part in text.split(_MEMBER_SEPARATOR)]
        ranker.booster_ = ranker.boosters_[0]
        ranker.feature_names_ = ranker.booster_.feature_name()
        return ranker
