"""MLflow pyfunc wrappers: how the registry holds each model, with its serving artefacts beside it.

Each registered version carries two artefacts: ``model`` (the fitted model as its own ``save`` wrote it) and
``serving`` (the precomputed tables serving loads, see :mod:`training.export`). ``predict`` scores new rows with
the fitted model, so batch scoring and ad-hoc use go through the registry too.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

# What a model environment needs; pinned to what trained it so a loaded model behaves the same.
_REQUIREMENTS = ("numpy", "pandas", "pyarrow", "scipy", "lightgbm", "lleaves", "llvmlite", "implicit", "torch",
                 "scikit-learn", "threadpoolctl", "pydantic", "pydantic-settings", "pyyaml", "babel")


DEFAULT_N = 10  # products per customer when the input has no ``n``


def pip_requirements() -> list[str]:
    """Exact versions of the packages the models need (MLflow's own inference imports every model; slow).

    Local build tags are dropped (``torch==2.13.0+cpu`` -> ``torch==2.13.0``): no package index serves them, so a
    requirement that keeps one cannot be installed anywhere but on the machine that trained the model.
    """
    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={public_version(version(name))}")
        except PackageNotFoundError:
            continue
    return out


def public_version(installed: str) -> str:
    """``installed`` without its local version label (PEP 440: everything from ``+``)."""
    return installed.split("+", 1)[0]


def code_paths() -> list[str]:
    """Our code that travels with every logged model (MLflow copies it into the model and puts it on
    ``sys.path`` when loading), so a registered model loads where only its requirements are installed.

    The packages the wrappers import (``models`` imports ``features``; the wrappers live in ``training``), and
    the shipped configs when they sit beside the packages rather than inside one: the packages find them
    relative to their own files, and the copy keeps that layout.
    """
    import features
    import models
    from features.presets import CONFIG_DIR

    packages = [Path(features.__file__).parent, Path(models.__file__).parent, Path(__file__).resolve().parent]
    paths = [str(p) for p in packages]
    config_dir = CONFIG_DIR.resolve()
    if config_dir.is_dir() and not any(config_dir.is_relative_to(p) for p in packages):
        paths.append(str(config_dir))
    return paths


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a customer feature frame (features.pipeline.feature_frame). Output: ``churn_probability``."""

    def load_context(self, context: Any) -> None:
        from models.churn.lightgbm import ChurnModel

        self.model = ChurnModel.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return pd.DataFrame({"churn_probability": self.model.predict_proba(model_input)})


class ClvPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a CLV summary (features.clv_summary.clv_summary: frequency, recency, T, monetary_value).
    Output: ``p_alive``, ``expected_purchases``, ``expected_spend``, ``clv``."""

    def load_context(self, context: Any) -> None:
        from models.clv.lifetime_value import LifetimeValueModel

        self.model = LifetimeValueModel.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        summary = model_input.copy()
        summary.attrs["time_unit_days"] = self.model.time_unit_days
        return self.model.predict(summary).reset_index(drop=True)


# The registered recommender's request options: (MLflow type, default, shape); None or no category: the
# model's own default.
RECOMMENDER_PARAMS: dict[str, tuple[str, Any, tuple[int, ...] | None]] = {
    "channel": ("string", None, None),
    "store_id": ("string", None, None),
    "availability": ("string", "in_store", None),
    "new_only": ("boolean", False, None),
    "categories": ("string", [], (-1,)),
    "buy_again_share": ("double", None, None),
    "lang": ("string", "en", None),
}


def recommender_param_schema() -> Any:
    """The MLflow parameter schema of :data:`RECOMMENDER_PARAMS`, logged in the recommender's signature (MLflow
    passes only the params its signature names)."""
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ParamSchema([ParamSpec(name, dtype, default, shape)
                        for name, (dtype, default, shape) in RECOMMENDER_PARAMS.items()])


def recommender_options(params: dict[str, Any] | None) -> tuple[Any, str]:
    """The :class:`Filters` and reason language that ``params`` ask for; an unknown value is a one-line error."""
    from features.i18n import check_locale
    from models.recommenders.filters import Filters

    given = {name: value for name, value in (params or {}).items()
             if name in RECOMMENDER_PARAMS and value is not None}
    locale = str(given.pop("lang", "en"))
    check_locale(locale, "lang")
    return Filters(**given), locale


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """Input: ``customer_id`` (the customer's own id) and optionally ``n`` per row (default 10). Output: one row per
    recommended product with ``rank``, ``score``, ``reason`` and ``strategy``, customers in the order of the input
    rows.

    Params (MLflow's ``predict(..., params=...)``; :data:`RECOMMENDER_PARAMS`): the request options of the API
    and of ``clientele score`` -- ``channel``, ``store_id``, ``availability``, ``new_only``, ``categories``,
    ``buy_again_share`` and ``lang`` (the reasons' language) -- decided by the same policy
    (:class:`models.recommenders.filters.Filters`).

    The model knows customers by pseudonym only (:mod:`features.identities`): ids are pseudonymised with the
    installation's key, taken from the settings (``CLIENTELE_DATA_DIR`` or ``CLIENTELE_PSEUDONYM_KEY``), and
    customers on its erasure list are answered as nobody, as by the API.
    """

    def load_context(self, context: Any) -> None:
        from models.recommenders.base import Recommender

        self.model = Recommender.load(context.artifacts["model"])
        self.settings = installation_settings(context.artifacts["serving"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from features.privacy import pseudonymise_many

        filters, locale = recommender_options(params)
        own = model_input["customer_id"].astype("str").to_numpy()
        customers = pseudonymise_many(own, self.settings.pseudonym_key)
        erased = self.settings.erasures().pseudonyms
        wanted = (pd.to_numeric(model_input["n"]).fillna(DEFAULT_N).astype("int64").to_numpy()
                  if "n" in model_input.columns else np.full(len(customers), DEFAULT_N, dtype=np.int64))
        distinct = pd.unique(wanted)
        # Each row asks for its own n: one recommend call per distinct n, then every input row gets its
        # customer's rows, in the order of the input rows (a customer asked for twice is answered twice).
        parts = []
        for n in distinct:
            rows = np.flatnonzero(wanted == n)
            result = self.model.recommend(list(dict.fromkeys(customers[rows].tolist())), n=int(n), filters=filters,
                                          erased=erased, locale=locale)
            result = result.assign(_order=np.arange(len(result)))
            asked = pd.DataFrame({"_row": rows, "_pseudonym": customers[rows], "_own": own[rows]})
            parts.append(asked.merge(result, left_on="_pseudonym", right_on="customer_id", how="inner"))
        if not parts:
            return self.model.recommend([], n=DEFAULT_N, filters=filters, locale=locale)
        out = pd.concat(parts, ignore_index=True).sort_values(["_row", "_order"], kind="stable")
        out["customer_id"] = out["_own"]
        return out[[c for c in result.columns if c != "_order"]].reset_index(drop=True)


def installation_settings(serving: str) -> Any:
    """The settings of the installation a loaded model answers for, checked against the key fingerprint in the
    model's serving manifest: a model loaded away from its data folder (no key there, or another installation's
    key) is refused rather than answering every customer as a stranger."""
    from features.exceptions import ConfigError
    from features.identities import key_check
    from features.privacy import KEY_FILE
    from features.settings import get_settings
    from training.layout import PSEUDONYM_CHECK, find_serving_folder, read_manifest
    from features.settings import RECOMMENDER

    settings = get_settings()
    where = ("set CLIENTELE_DATA_DIR to the data folder it was trained in (or CLIENTELE_PSEUDONYM_KEY to that "
             "installation's key)")
    if settings.configured_pseudonym_key is None and not (settings.data_dir / KEY_FILE).exists():
        raise ConfigError(f"{settings.data_dir / KEY_FILE} does not exist: the model knows customers by keyed "
                          f"pseudonym; {where}")
    manifest = read_manifest(find_serving_folder(serving), RECOMMENDER)
    if manifest.get(PSEUDONYM_CHECK) != key_check(settings.pseudonym_key):
        raise ConfigError(f"the model was trained with another pseudonym key than {settings.data_dir / KEY_FILE}: "
                          f"{where}")
    return settings


class UpliftPyfunc(mlflow.pyfunc.PythonModel):
    """Input: customer features as of a send (features.campaigns.campaign_features). Output: ``uplift``,
    ``incremental_spend``, ``expected_incremental_value`` and ``best_offer`` (training.campaigns.UpliftScorer)."""

    def load_context(self, context: Any) -> None:
        from training.campaigns import UpliftScorer

        self.model = UpliftScorer.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.model.predict(model_input)
