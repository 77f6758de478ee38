"""Recommender hyperparameters: configs/recommender.yaml parsed into each model's typed parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.exceptions import ConfigError
from features.presets import config_file


class Params(BaseModel):
    """Base of every model's hyperparameters: frozen, unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PeerSpec(Params):
    """One peer of the evaluation: its model, fixed parameters and the grid tuned on the validation window."""

    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)


class EvaluationSettings(Params):
    """The ``evaluation`` section of configs/recommender.yaml: the protocol and the peers."""

    test_days: int = Field(30, ge=1)
    k_recall: int = Field(20, ge=1)
    k_ndcg: int = Field(10, ge=1)
    k_hit: int = Field(10, ge=1)
    select_by: str = "ndcg@{k_ndcg}"
    peers: dict[str, PeerSpec] = Field(default_factory=dict)
    # Worker processes sharing the evaluation's fits (None: one per core; 1: all in the calling process).
    workers: int | None = Field(None, ge=1)

    @property
    def metric(self) -> str:
        """The metric peers are tuned by, e.g. ``ndcg@10``."""
        return self.select_by.format(k_ndcg=self.k_ndcg, k_recall=self.k_recall)


def evaluation_settings(config: dict[str, Any]) -> EvaluationSettings:
    """The typed ``evaluation`` section of a loaded configuration (ConfigError names a bad field)."""
    return parse_params(EvaluationSettings, config.get("evaluation") or {}, "recommender config: evaluation")


def parse_params(cls: type[Params], values: dict[str, Any], where: str) -> Params:
    """Validate ``values`` into ``cls``; a ConfigError names the first bad field."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "?"
        raise ConfigError(f"{where}: {field}: {err['msg']}") from None


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """Read the recommender configuration (default ``configs/recommender.yaml`` of the project, else the
    packaged one).

    Returns
    -------
    dict
        Sections ``models`` (hyperparameters per model name), ``clientele`` (the two-stage model) and
        ``evaluation`` (protocol and peer tuning grids).

    Raises
    ------
    ConfigError
        The file cannot be read or is not a mapping.
    """
    path = Path(path) if path else config_file("recommender.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the recommender configuration must be a mapping of sections")
    for section in ("models", "evaluation"):
        if not isinstance(data.get(section), dict):
            raise ConfigError(f"{path}: section '{section}' is missing")
    try:
        evaluation_settings(data)  # a bad protocol or peer is reported now, not after an hour of fitting
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return data


def preset_defaults(preset: str | Path | None) -> dict[str, Any]:
    """Recommender settings an industry preset decides (``recommend.exclude_bought``,
    ``recommend.buy_again_share``: repeat purchase matters in beauty and grocery, rarely in jewellery, and
    ``recommend.new_arrival_share``); empty without a preset."""
    if preset is None:
        return {}
    from features.presets import load_preset

    recommend = load_preset(preset)["recommend"]
    share = recommend.get("buy_again_share")
    values = {"exclude_bought": bool(recommend["exclude_bought"]),
              "buy_again_share": None if share is None else float(share)}
    if recommend.get("new_arrival_share") is not None:
        values["new_arrival_share"] = float(recommend["new_arrival_share"])
    return values


def model_section(name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hyperparameters of model ``name`` (an empty mapping when the configuration has none)."""
    config = config if config is not None else load_config()
    section = config["models"].get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"recommender config: models.{name} must be a mapping")
    return dict(section)
