"""Batch scoring for CRM campaigns: the champions' recommendations and customer scores for every customer.

Without new data the champions' own precomputed tables are exported. With ``--data`` the churn, CLV and
segment champions rescore every customer as of the end of that data, through the same feature functions and
the same feature settings as training (saved with each model, never today's configs); ``--engine dask`` runs that per customer bucket on a Dask cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from features.clv_summary import clv_summary
from features.columns import Columns as C
from features.columns import Tables
from features import storage
from features.csvsafe import write_csv
from features.exceptions import ClienteleError
from features.pipeline import feature_frame
from features.identities import IdentityMap
from features.privacy import ErasureList, marketing_consent
from features.storage import Location
from models.churn.config import ScoringSettings
from training.export import profiling_allowed, risk_band
from features.settings import CHAMPION, CHURN, CLV, RECOMMENDER, UPLIFT, Settings


@dataclass
class Champions:
    """Local copies of the three champions' artefacts."""

    folders: dict[str, Path]
    versions: dict[str, str]

    def serving(self, kind: str) -> Path:
        return _find(self.folders[kind], "serving", "manifest.json")

    def artifact(self, kind: str, name: str) -> Path:
        return _find(self.folders[kind], name)

    def recommender(self) -> Any:
        """The recommender champion as its own ``save`` wrote it, loaded."""
        from models.recommenders.base import Recommender

        return Recommender.load(_find(self.folders[RECOMMENDER], "model", "meta.json"))


def _find(root: Path, name: str, inside: str | None = None) -> Path:
    for path in sorted(root.rglob(name)):
        if inside is None or (path / inside).exists():
            return path
    raise ClienteleError(f"{root}: no '{name}' in the downloaded model (was it logged by `clientele train`?)")


def download_champions(settings: Settings, dst: Path, kinds: tuple[str, ...] = (RECOMMENDER, CHURN, CLV, UPLIFT)
                       ) -> Champions:
    """Download each champion's artefacts from the registry."""
    from mlflow import MlflowClient

    client = MlflowClient()
    folders, versions = {}, {}
    for kind in kinds:
        name = settings.model_name(kind)
        try:
            version = client.get_model_version_by_alias(name, CHAMPION)
        except Exception:
            if kind in (RECOMMENDER, UPLIFT):  # no product ids: no recommender; no past campaigns: no uplift
                continue
            raise ClienteleError(f"no champion of '{name}' in the registry at {settings.tracking_uri}: run "
                                 f"`clientele train` first") from None
        folders[kind] = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}@{CHAMPION}",
                                                                 dst_path=str(dst / kind)))
        versions[kind] = str(version.version)
    return Champions(folders=folders, versions=versions)


def champion_recommendations(champions: Champions, n: int, batch: int = 10_000, filters: Any = None,
                             client: Any = None) -> pd.DataFrame:
    """Top-``n`` products for every customer the recommender champion knows, by the model's own policy with
    ``filters`` (default: the default filters; :meth:`Recommender.recommend`): exactly what the API answers them,
    never the raw lists. Customers are named by pseudonym, as the model knows them (:func:`name_customers` gives
    their own ids).

    With a Dask ``client`` the batches of ``batch`` customers run on its workers, the model shipped to each worker
    once: the same rows in the same order.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``rank``, ``product_id``, ``score``, ``reason`` (a message:
        :func:`features.i18n.localise_frame` words it), ``strategy``.
    """
    model = champions.recommender()
    ids = model.customers_.external_ids
    shared = (model, n, filters)
    batches = [ids[start:start + batch] for start in range(0, len(ids), batch)] or [ids[:0]]
    if client is None:
        parts = [_recommend_batch(shared, customers) for customers in batches]
    else:
        from features.dask_engine import map_partitions

        parts = list(map_partitions(client, _recommend_batch, shared, batches))
    return pd.concat(parts, ignore_index=True)


def _recommend_batch(shared: tuple[Any, int, Any], customers: np.ndarray) -> pd.DataFrame:
    """One batch of :func:`champion_recommendations` (a Dask task on a cluster)."""
    model, n, filters = shared
    return model.recommend(list(customers), n=n, filters=filters, locale=None)


def precomputed_scores(champions: Champions) -> pd.DataFrame:
    """Churn and CLV champions' serving tables joined per customer, with value at risk."""
    churn = pd.read_parquet(champions.serving(CHURN) / "scores.parquet")
    clv = pd.read_parquet(champions.serving(CLV) / "scores.parquet")
    scores = churn.merge(clv, on=C.customer_id, how="outer")
    scores["value_at_risk"] = scores["churn_probability"] * scores["clv"]
    # Every row says whether the customer may be contacted: the uplift model's consent of record, else the CLV
    # profile's (as the API's export does); unknown stays empty, and is never contactable.
    profiles = champions.serving(CLV) / "profiles.parquet"
    consent = pd.read_parquet(profiles)
    if C.consent_marketing in consent.columns:
        scores = scores.merge(consent[[C.customer_id, C.consent_marketing]], on=C.customer_id, how="left")
    if UPLIFT in champions.folders:
        uplift = pd.read_parquet(champions.serving(UPLIFT) / "scores.parquet").rename(
            columns={C.consent_marketing: "_consent"})
        scores = scores.merge(uplift[[C.customer_id, "uplift", "expected_incremental_value", "best_offer",
                                      "_consent"]], on=C.customer_id, how="left")
        known = scores.pop("_consent").astype("boolean")
        scores[C.consent_marketing] = known.where(known.notna(), scores[C.consent_marketing].astype("boolean")) \
            if C.consent_marketing in scores.columns else known
    return scores.sort_values("value_at_risk", ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class ScoringModels:
    """Everything :func:`score_customers` needs, loaded: it travels to Dask workers as it is, so they need no
    access to the folder the champions were downloaded to (the client's own temporary disk).

    Each model comes with the settings it was trained with (:class:`ScoringSettings`, saved beside it): features
    are rebuilt and reasons worded as at training time, whatever today's configs say.
    """

    churn_model: Any
    clv_model: Any
    segmenter: Any
    churn: ScoringSettings
    clv: ScoringSettings

    @classmethod
    def from_champions(cls, champions: Champions) -> "ScoringModels":
        from models.churn.lightgbm import ChurnModel
        from models.clv.lifetime_value import LifetimeValueModel
        from models.segments import CustomerSegmenter

        segments = json.loads(champions.artifact(CLV, "segments.json").read_text())
        return cls(churn_model=ChurnModel.load(champions.artifact(CHURN, "model")),
                   clv_model=LifetimeValueModel.load(champions.artifact(CLV, "model.json")),
                   segmenter=CustomerSegmenter.from_dict(segments),
                   churn=ScoringSettings.load(champions.artifact(CHURN, ScoringSettings.FILE)),
                   clv=ScoringSettings.load(champions.artifact(CLV, ScoringSettings.FILE)))


def score_customers(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, models: ScoringModels,
                    **_: Any) -> pd.DataFrame:
    """Churn probability, risk band, reasons, CLV, P(alive) and segments of every customer who bought before
    ``cutoff``, with the champion models. Works on all customers or on one Dask bucket of them.

    Raises
    ------
    DataError
        A feature a model was trained on cannot be built from ``tables``.
    """
    from models.segments import segment_customers

    features = profiling_allowed(feature_frame(tables, cutoff, None, models.churn.features))
    if features.empty:
        return pd.DataFrame()
    churn = models.churn_model
    probability = churn.predict_proba(features)
    reasons = churn.reasons(features, models.churn.reasons.top)
    # The two champions may come from different runs: the segments see the features the CLV run described.
    described = features
    if models.clv.features != models.churn.features:
        described = feature_frame(tables, cutoff, None, models.clv.features).set_index(C.customer_id).loc[
            features[C.customer_id]].reset_index()
    clv_model = models.clv_model
    summary = clv_summary(tables[Tables.transactions], cutoff, clv_model.time_unit_days)
    summary = summary.reindex(features[C.customer_id].astype("str")).fillna(0.0)
    values = clv_model.predict(summary)
    segments = segment_customers(described, probability, values["clv"].to_numpy(), models.segmenter)
    bands = models.churn.risk_bands
    out = pd.DataFrame({
        C.customer_id: features[C.customer_id].to_numpy(),
        "churn_probability": probability,
        "risk_band": risk_band(probability, bands.medium, bands.high),
        "churn_reasons": [[r["text"] for r in rs] for rs in reasons],  # messages: localise_frame words them
        "p_alive": values["p_alive"].to_numpy(),
        "expected_spend": values["expected_spend"].to_numpy(),
        "clv": values["clv"].to_numpy(),
        C.consent_marketing: marketing_consent(features[C.customer_id], tables.get(Tables.customers)),
    })
    for col in ("rfm_segment", "r_score", "f_score", "m_score", "lifecycle_stage", "membership_tier",
                "value_tier", "value_at_risk"):
        column = segments[col]
        out[col] = column.astype("str").where(column.notna()).to_numpy() if isinstance(
            column.dtype, pd.CategoricalDtype) else column.to_numpy()
    return out


def bucket_scores(tables: dict[str, pd.DataFrame], data_end: pd.Timestamp, models: ScoringModels) -> pd.DataFrame:
    """:func:`score_customers` on one Dask bucket, as of the end of the whole data."""
    return score_customers(tables, data_end.normalize() + pd.Timedelta(days=1), models)


def name_customers(frame: pd.DataFrame, identities: IdentityMap) -> tuple[pd.DataFrame, int]:
    """``frame`` (from a champion's tables: customers by pseudonym) with each customer's own id, through the
    data folder's identity map; rows of customers the map cannot name (erased since, or a lost map) are left
    out and counted."""
    if frame.empty:
        return frame, 0
    pseudonyms = frame[C.customer_id].astype("str").to_numpy(dtype=object)
    distinct, codes = np.unique(pseudonyms, return_inverse=True)
    own = identities.resolve(distinct)
    named = np.array([o is not None for o in own.tolist()], dtype=bool)
    keep = named[codes]
    out = frame[keep].copy()
    out[C.customer_id] = pd.Series(own[codes[keep]], index=out.index, dtype="str")
    return out.reset_index(drop=True), int((~named).sum())


def write_outputs(frames: dict[str, pd.DataFrame], out_dir: Location, erasures: ErasureList | None = None
                  ) -> list[Location]:
    """Each frame as Parquet and CSV (text cells that a spreadsheet would run as formulas neutralised) in a local
    folder or under a URL, without the customers on ``erasures``: a champion trained before an erasure still
    holds them, an export never does."""
    out_dir = storage.as_location(out_dir)
    storage.make_dirs(out_dir)
    paths = []
    for name, frame in frames.items():
        if erasures:
            frame = frames[name] = erasures.drop(frame)
        storage.write_parquet(frame, storage.join(out_dir, f"{name}.parquet"))
        write_csv(frame, storage.join(out_dir, f"{name}.csv"))  # ids and reasons neutralised for spreadsheets
        paths += [storage.join(out_dir, f"{name}.parquet"), storage.join(out_dir, f"{name}.csv")]
    return paths
