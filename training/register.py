"""MLflow tracking and registry: where runs go, how versions are registered and when `champion` moves."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.exceptions import ClienteleError
from training.config import PromotionRule
from features.settings import CHALLENGER, CHAMPION, CHURN, CLV, RECOMMENDER, UPLIFT, Settings

MODEL_KINDS = (RECOMMENDER, CHURN, CLV, UPLIFT)  # every kind of registered model

# Tags every registered version carries, so a promotion decision is reproducible from the registry alone.
TAG_METRIC = "clientele.metric"
TAG_VALUE = "clientele.metric_value"
TAG_HOLDOUT = "clientele.holdout"
TAG_DECISION = "clientele.decision"


def setup_tracking(settings: Settings, experiment: str) -> str:
    """Point MLflow at the configured store (creating the local SQLite store and artefact folder) and return
    the experiment id."""
    uri = settings.tracking_uri
    # Progress bars of artefact transfers would flood the training log and CI output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if not uri.startswith(("http://", "https://", "databricks")):
            settings.artifact_root.mkdir(parents=True, exist_ok=True)
            location = settings.artifact_root.as_uri()
        return mlflow.create_experiment(experiment, artifact_location=location)
    except MlflowException as exc:
        raise ClienteleError(f"MLflow at {uri}: {str(exc).splitlines()[0]}") from None


def code_version() -> str:
    """The git commit of the checkout (with '-dirty' when it has local changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("CLIENTELE_CODE_VERSION", "unknown")


@dataclass
class Candidate:
    """A logged model waiting for registration: where it is and how it scored on the holdout."""

    kind: str
    model_uri: str
    metric: str
    value: float
    holdout: str


@dataclass
class Decision:
    """What happened to one registered model in a run."""

    kind: str
    name: str
    version: str
    alias: str
    metric: str
    value: float
    champion_value: float | None
    champion_version: str | None
    reason: str


def current_champion(client: MlflowClient, name: str) -> Any | None:
    """The version holding `champion`, or None (no such model or alias yet)."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def recorded_value(champion: Any, rule: PromotionRule, holdout: str) -> float | None:
    """The champion's promotion metric as recorded on ``holdout``; None when it was measured elsewhere."""
    tags = champion.tags or {}
    if tags.get(TAG_METRIC) != rule.metric or TAG_VALUE not in tags or tags.get(TAG_HOLDOUT) != holdout:
        return None
    return float(tags[TAG_VALUE])


def decide(candidate: Candidate, rule: PromotionRule, champion_version: str | None,
           champion_value: float | None) -> tuple[bool, str]:
    """Whether ``candidate`` becomes champion: it must beat the champion on the same holdout by more than
    ``rule.min_delta``."""
    if champion_version is None:
        return True, "no champion yet"
    if champion_value is None:
        return False, f"champion v{champion_version} could not be measured on this holdout; promote by hand"
    delta = candidate.value - champion_value if rule.higher_is_better else champion_value - candidate.value
    if delta > rule.min_delta:
        return True, f"{rule.metric} {candidate.value:.4f} beats champion v{champion_version}'s {champion_value:.4f}"
    return False, (f"{rule.metric} {candidate.value:.4f} does not beat champion v{champion_version}'s "
                   f"{champion_value:.4f}")


def champion_run_id(champion: Any) -> str | None:
    """The training run that produced a registered version."""
    return (champion.tags or {}).get("clientele.run_id") or champion.run_id


def register_and_promote(candidates: list[Candidate], rules: dict[str, PromotionRule], settings: Settings,
                         run_id: str, champion_values: dict[str, float | None]) -> list[Decision]:
    """Register every candidate, then move aliases: `champion` to those that beat theirs on the same holdout,
    `challenger` to the others. Called only after everything else in the run succeeded, so a failed run never
    touches the registry.

    Parameters
    ----------
    champion_values
        Each kind's current champion measured on this run's holdout (recorded, or replayed by the caller).
    """
    client = MlflowClient()
    decisions = []
    for cand in candidates:
        name = settings.model_name(cand.kind)
        rule = rules[cand.kind]
        champion = current_champion(client, name)
        champion_version = str(champion.version) if champion is not None else None
        champion_value = champion_values.get(cand.kind)
        promote, reason = decide(cand, rule, champion_version, champion_value)
        version = mlflow.register_model(cand.model_uri, name, tags={
            TAG_METRIC: rule.metric, TAG_VALUE: repr(float(cand.value)), TAG_HOLDOUT: cand.holdout,
            "clientele.run_id": run_id})
        alias = CHAMPION if promote else CHALLENGER
        client.set_registered_model_alias(name, alias, version.version)
        client.set_model_version_tag(name, version.version, TAG_DECISION, reason)
        decisions.append(Decision(kind=cand.kind, name=name, version=str(version.version), alias=alias,
                                  metric=rule.metric, value=cand.value, champion_value=champion_value,
                                  champion_version=champion_version, reason=reason))
    return decisions


def promote(name: str, version: str, settings: Settings) -> str:
    """Force ``version`` of ``name`` to champion (the previous champion becomes challenger)."""
    client = MlflowClient()
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        raise ClienteleError(f"model '{name}' has no version {version}") from None
    previous = current_champion(client, name)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_model_version_tag(name, str(version), TAG_DECISION, "promoted by hand")
    if previous is not None and str(previous.version) != str(version):
        client.set_registered_model_alias(name, CHALLENGER, str(previous.version))
        return f"{name}: v{version} is champion (was v{previous.version}, now challenger)"
    return f"{name}: v{version} is champion"


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Every version of the registered models with its aliases and key metric, newest first."""
    client = MlflowClient()
    rows = []
    for kind in MODEL_KINDS:
        name = settings.model_name(kind)
        try:
            versions = client.search_model_versions(f"name='{name}'")
            aliases = client.get_registered_model(name).aliases
        except MlflowException:
            continue
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        for v in sorted(versions, key=lambda mv: -int(mv.version)):
            tags = v.tags or {}
            rows.append({"model": name, "version": str(v.version), "aliases": sorted(by_version.get(str(v.version), [])),
                         "metric": tags.get(TAG_METRIC), "value": float(tags[TAG_VALUE]) if TAG_VALUE in tags else None,
                         "run_id": v.run_id, "created": v.creation_timestamp, "decision": tags.get(TAG_DECISION)})
    return rows


def log_json(obj: Any, artifact_file: str) -> None:
    """Log a JSON document as an artefact of the active run."""
    mlflow.log_text(json.dumps(obj, indent=1, default=str), artifact_file)
