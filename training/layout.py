"""The serving layout: the folder each registered model version carries for the API, owned here alone.

Training's export (:mod:`training.export`) writes it through :func:`write_manifest` and the tables below;
serving (:mod:`serving.compile`, :mod:`serving.registry`) reads it through :func:`read_manifest` and
:func:`find_serving_folder`. File names, required columns and the format version live in this module only.

Every version of the three registered models (``settings.model_name(kind)``: ``clientele-recommender``,
``clientele-churn``, ``clientele-clv``) is an MLflow pyfunc model whose artefacts include a folder
``serving/``; after ``mlflow.artifacts.download_artifacts("models:/<name>/<version>")`` it is the folder holding
``manifest.json`` (``artifacts/serving/``). Serving depends on nothing else of the model. Ids are text.
Every ``customer_id`` below is the customer's keyed pseudonym, never their own id (format version 2,
:mod:`features.identities`): serving pseudonymises the id of a request and names customers in exports through
the data folder's identity map. Format 1 (own ids) is refused: such a version is retrained, not served.
Columns beyond those listed are ignored; a listed column that is missing is an :class:`ArtifactError`.

Recommender (``manifest.json``: ``{"kind": "recommender", "format_version": 2, "cutoff": ISO date,
"preset": str, "exclude_bought_default": bool, "buy_again_share_default": float|null,
"new_arrival_share_default": float, "k": int, "events": {"weights", "decay", "max_products", "boost"},
"created_at": ISO}``; ``exclude_bought_default``, ``buy_again_share_default`` (null when absent: the lists' own
mix), ``new_arrival_share_default`` (0 when absent) and ``events`` are the model's policy settings,
:class:`models.recommenders.policy.EventSettings`, the package's defaults when absent)

``products.parquet``
    product_id str, name str|null, category str|null, price float|null, in_stock bool, new bool (a new arrival;
    optional, none when absent) — every product the other tables mention.
``recommendations.parquet``
    customer_id str, rank int (1 = best), product_id str, score float, reason str — each personal customer's
    ranked candidates (:meth:`Recommender.candidate_lists`: the best k products merged with the best k not bought
    before), sorted by customer_id then rank. The policy applies ``exclude_bought``, stock, category and price.
``bought.parquet``
    customer_id, product_id — the distinct products each customer bought before the cutoff.
``similar.parquet``
    product_id, rank, similar_product_id, score, reason — the top ~50 similar products of each product.
``popular.parquet``
    scope ("all" | "region" | "category"), key (str; "" when scope is "all"), rank, product_id, score,
    reason ("popular in London") — cold start and non-personal results.
``customers.parquet``
    customer_id, region str|null, consent_profiling bool — every customer known at the cutoff.
``inventory.parquet`` (optional: trained without an inventory table, every store has the catalogue's in_stock)
    store_id str, product_id str|null — what each store had in stock when the model was trained, one row per store and
    product on its shelf (a store with nothing on it: one row with a null product).
``channels.parquet`` (optional: trained without a ``channel`` column, a channel changes no ranking)
    channel str, product_id str, boost float — each product's channel boost
    (:func:`models.recommenders.policy.channel_boosts`), every product in every channel the history shows.

Churn (``{"kind": "churn", "format_version": 2, "cutoff", "horizon_days", "created_at"}``)

``scores.parquet``
    customer_id, churn_probability float, risk_band str (low / medium / high), churn_reasons list<str>.

CLV (``{"kind": "clv", "format_version": 2, "cutoff", "created_at"}``)

``scores.parquet``
    customer_id, p_alive, expected_purchases_12m, expected_spend, clv, value_tier, rfm_segment, r_score,
    f_score, m_score, lifecycle_stage, membership_tier (customer_id and clv required, the rest optional).
``moments.parquet`` (optional: versions without it serve no moments)
    customer_id, kind (replenishment / birthday / occasion / tier_upgrade), name str|null (the occasion, the
    next tier, the product due), date (day), confidence float, description str, products list<str>, reasons
    list<str> -- one row per customer and moment (:func:`models.moments.detect.find_moments`), sorted by date.
``profiles.parquet``
    customer_id plus any profile columns (first_purchase, last_purchase, orders, total_spend,
    avg_order_value, distinct_products, top_category, region, member_tier, share_store / share_online /
    share_app, home_store, home_store_share (the store of most of their purchases and its share), consent_profiling,
    consent_marketing); every column beyond customer_id is optional and served
    as it is.

Uplift (``{"kind": "uplift", "format_version": 2, "cutoff", "created_at", "uplift_basis", "uplift_note"}``,
optional: served when registered; ``uplift_basis`` is ``campaign_average`` when the past campaigns were too small
to tell customers apart, and ``uplift_note`` then says why: the export refuses to sort by a constant)

``scores.parquet``
    customer_id, uplift (change in the chance of buying that a contact brings), incremental_spend,
    expected_incremental_value (uplift x value - contact cost), best_offer, consent_marketing; optional:
    p_purchase_if_contacted and p_purchase_if_not (calibrated), uplift_basis, uplift_reasons list<str>,
    uplift_reason_codes list<str>.
``campaigns.json`` (optional)
    The campaign reports measured when the model was trained (:func:`training.campaigns.campaign_reports`:
    ``data_end``, ``campaigns`` summaries, ``reports`` by campaign id), aggregates only: no customer id. Serving
    answers ``GET /v1/campaigns`` and ``GET /v1/campaigns/{id}/report`` from it.

Serving joins churn and CLV per customer and computes value_at_risk = churn_probability x clv when it loads
them; responses name the registry version that produced them ("recommender:3").

The writers below build a layout from DataFrames: tests register them in a real MLflow registry.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from features.exceptions import ClienteleError
from features.settings import CHURN, CLV, RECOMMENDER, UPLIFT

MANIFEST = "manifest.json"
CAMPAIGN_REPORTS = "campaigns.json"  # uplift: the campaign reports measured at training (optional)
FORMAT_VERSION = 2  # 2: customer ids are pseudonyms
PSEUDONYM_CHECK = "pseudonym_check"  # manifest key: fingerprint of the key the pseudonyms were made with

# File -> columns serving needs, per kind.
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    RECOMMENDER: {
        "products.parquet": ("product_id", "name", "category", "price", "in_stock"),
        "recommendations.parquet": ("customer_id", "rank", "product_id", "score", "reason"),
        "bought.parquet": ("customer_id", "product_id"),
        "similar.parquet": ("product_id", "rank", "similar_product_id", "score", "reason"),
        "popular.parquet": ("scope", "key", "rank", "product_id", "score", "reason"),
        "customers.parquet": ("customer_id", "region", "consent_profiling"),
    },
    CHURN: {"scores.parquet": ("customer_id", "churn_probability", "risk_band", "churn_reasons")},
    CLV: {"scores.parquet": ("customer_id", "clv"), "profiles.parquet": ("customer_id",)},
    UPLIFT: {"scores.parquet": ("customer_id", "uplift", "expected_incremental_value", "best_offer",
                                "consent_marketing")},
}

MOMENTS_FILE = "moments.parquet"  # optional table of the CLV folder
INVENTORY_FILE = "inventory.parquet"  # optional tables of the recommender folder
CHANNELS_FILE = "channels.parquet"
MOMENT_COLUMNS = ("customer_id", "kind", "name", "date", "confidence", "description", "products", "reasons")

CLV_SCORE_COLUMNS = ("p_alive", "expected_purchases_12m", "expected_spend", "clv", "value_tier", "rfm_segment",
                     "r_score", "f_score", "m_score", "lifecycle_stage", "membership_tier")


class ArtifactError(ClienteleError):
    """A model version's serving folder does not follow the layout (the message names the file and column)."""


def find_serving_folder(root: str | Path) -> Path:
    """The folder holding ``manifest.json`` under a downloaded model version (``artifacts/serving``)."""
    root = Path(root)
    if (root / MANIFEST).exists():
        return root
    found = sorted(root.rglob(MANIFEST), key=lambda p: (p.parent.name != "serving", len(p.parts)))
    if not found:
        raise ArtifactError(f"{root}: no serving folder ({MANIFEST} not found); was the model registered by "
                            f"`clientele train`?")
    return found[0].parent


def read_manifest(folder: str | Path, kind: str) -> dict[str, Any]:
    """The manifest of a serving folder, checked for kind, format version and the files serving reads."""
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read the manifest ({exc})") from None
    if manifest.get("kind") != kind:
        raise ArtifactError(f"{path}: kind is {manifest.get('kind')!r}, expected {kind!r}")
    if manifest.get("format_version") == 1:
        raise ArtifactError(f"{path}: this version was trained before customer ids were pseudonymised and holds "
                            f"customers' own ids: retrain (`clientele train`) and promote the new version")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format_version {manifest.get('format_version')!r} is not supported "
                            f"(this server reads {FORMAT_VERSION})")
    for name, columns in REQUIRED[kind].items():
        file = folder / name
        if not file.exists():
            raise ArtifactError(f"{file}: missing from the {kind} serving folder")
        present = set(pq.read_schema(file).names)
        for column in columns:
            if column not in present:
                raise ArtifactError(f"{file}: column {column!r} is missing")
    return manifest


def write_manifest(folder: Path, kind: str, cutoff: Any, pseudonym_check: str | None, **extra: Any) -> None:
    """Write a serving folder's ``manifest.json``: kind, format version, cutoff, creation time, the fingerprint of
    the key its customer pseudonyms were made with (:func:`features.identities.key_check`) and ``extra``."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"kind": kind, "format_version": FORMAT_VERSION, "cutoff": str(pd.Timestamp(cutoff).isoformat()),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                PSEUDONYM_CHECK: pseudonym_check, **extra}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))


def write_table(folder: Path, name: str, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Write one table of a serving folder, checked for the columns serving reads."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArtifactError(f"{name}: column {missing[0]!r} is missing")
    frame.to_parquet(folder / name, index=False)


def write_recommender_artifacts(folder: str | Path, *, products: pd.DataFrame, recommendations: pd.DataFrame,
                                bought: pd.DataFrame, similar: pd.DataFrame, popular: pd.DataFrame,
                                customers: pd.DataFrame, cutoff: str = "2024-01-01", preset: str = "beauty",
                                exclude_bought_default: bool = True, k: int | None = None,
                                events: dict[str, Any] | None = None, pseudonym_check: str | None = None,
                                inventory: pd.DataFrame | None = None, channels: pd.DataFrame | None = None) -> Path:
    """Write a recommender serving folder from its six tables and the optional inventory and channel tables (see
    the module docstring)."""
    folder = Path(folder)
    recommendations = recommendations.sort_values(["customer_id", "rank"], kind="stable")
    k = k if k is not None else int(recommendations.groupby("customer_id").size().max()) if len(recommendations) \
        else 0
    extra = {"events": events} if events is not None else {}
    write_manifest(folder, RECOMMENDER, cutoff, pseudonym_check, preset=preset,
                   exclude_bought_default=exclude_bought_default, k=k, **extra)
    tables = {"products.parquet": products, "recommendations.parquet": recommendations, "bought.parquet": bought,
              "similar.parquet": similar, "popular.parquet": popular, "customers.parquet": customers}
    for name, frame in tables.items():
        write_table(folder, name, frame, REQUIRED[RECOMMENDER][name])
    if inventory is not None:
        write_table(folder, INVENTORY_FILE, inventory, ("store_id", "product_id"))
    if channels is not None:
        write_table(folder, CHANNELS_FILE, channels, ("channel", "product_id", "boost"))
    return folder


def write_moments(folder: Path, moments: pd.DataFrame) -> None:
    """Write the moments table of a CLV serving folder (dates as days, product and reason lists as text)."""
    import pyarrow as pa

    missing = [c for c in MOMENT_COLUMNS if c not in moments.columns]
    if missing:
        raise ArtifactError(f"{MOMENTS_FILE}: column {missing[0]!r} is missing")
    frame = moments[list(MOMENT_COLUMNS)]
    schema = pa.schema([("customer_id", pa.string()), ("kind", pa.string()), ("name", pa.string()),
                        ("date", pa.date32()), ("confidence", pa.float64()), ("description", pa.string()),
                        ("products", pa.list_(pa.string())), ("reasons", pa.list_(pa.string()))])
    table = pa.Table.from_pandas(frame.assign(date=pd.to_datetime(frame["date"]).dt.date), schema=schema,
                                 preserve_index=False)
    pq.write_table(table, folder / MOMENTS_FILE)


def write_churn_artifacts(folder: str | Path, *, scores: pd.DataFrame, cutoff: str = "2024-01-01",
                          horizon_days: int = 90, pseudonym_check: str | None = None) -> Path:
    """Write a churn serving folder from its scores table."""
    folder = Path(folder)
    write_manifest(folder, CHURN, cutoff, pseudonym_check, horizon_days=horizon_days)
    write_table(folder, "scores.parquet", scores, REQUIRED[CHURN]["scores.parquet"])
    return folder


def write_uplift_artifacts(folder: str | Path, *, scores: pd.DataFrame, cutoff: str = "2024-01-01",
                           pseudonym_check: str | None = None, campaigns: dict[str, Any] | None = None,
                           **manifest: Any) -> Path:
    """Write an uplift serving folder from its scores table (and the campaign reports, when given)."""
    folder = Path(folder)
    write_manifest(folder, UPLIFT, cutoff, pseudonym_check, **manifest)
    write_table(folder, "scores.parquet", scores, REQUIRED[UPLIFT]["scores.parquet"])
    if campaigns is not None:
        write_campaign_reports(folder, campaigns)
    return folder


def write_campaign_reports(folder: Path, campaigns: dict[str, Any]) -> None:
    """Write ``campaigns.json`` of an uplift serving folder (JSON as `clientele campaign report --json` prints)."""
    (Path(folder) / CAMPAIGN_REPORTS).write_text(json.dumps(campaigns, default=str))


def read_campaign_reports(folder: Path) -> dict[str, Any] | None:
    """The campaign reports of an uplift serving folder, None when it has none (trained before they were kept).

    Raises
    ------
    ArtifactError
        The file is there but cannot be read, or lacks ``campaigns`` or ``reports``.
    """
    path = Path(folder) / CAMPAIGN_REPORTS
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read the campaign reports ({exc})") from None
    if not isinstance(data, dict) or not {"campaigns", "reports"} <= set(data):
        raise ArtifactError(f"{path}: 'campaigns' or 'reports' is missing")
    return data


def write_clv_artifacts(folder: str | Path, *, scores: pd.DataFrame, profiles: pd.DataFrame,
                        cutoff: str = "2024-01-01", pseudonym_check: str | None = None,
                        moments: pd.DataFrame | None = None) -> Path:
    """Write a CLV serving folder from its scores and profiles tables (and moments, when given)."""
    folder = Path(folder)
    write_manifest(folder, CLV, cutoff, pseudonym_check)
    write_table(folder, "scores.parquet", scores, REQUIRED[CLV]["scores.parquet"])
    write_table(folder, "profiles.parquet", profiles, REQUIRED[CLV]["profiles.parquet"])
    if moments is not None:
        write_moments(folder, moments)
    return folder
