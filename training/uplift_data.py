"""The rows an uplift model learns from: a customer-level experiment table, or a store's campaigns.

Either source becomes one :class:`UpliftTable` (features, treatment, outcomes), so evaluation and training see
the same thing whatever the data looked like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.campaigns import (COMPLETE, OUTCOMES, campaign_features, campaign_outcomes, campaigns_table,
                                treatment_flag)
from features.columns import Columns as C
from features.config import FeatureConfig
from features.exceptions import ConfigError, DataError
from features.mapping import load_mapping
from features.privacy import ErasureList
from features.presets import load_preset
from models.uplift.config import UpliftConfig


@dataclass
class UpliftTable:
    """One row per exposed customer: features, treatment (1/0) and outcome columns."""

    features: pd.DataFrame
    treatment: np.ndarray
    outcomes: pd.DataFrame
    source: str

    def outcome(self, name: str | None) -> str:
        """``name`` when the table has that outcome, the first one when ``name`` is None.

        Raises
        ------
        ConfigError
            An outcome the table does not have.
        """
        if name is None:
            return str(self.outcomes.columns[0])
        if name not in self.outcomes.columns:
            raise ConfigError(f"--outcome: '{name}' is not an outcome of {self.source} "
                              f"(outcomes: {', '.join(map(str, self.outcomes.columns))})")
        return name


def from_campaigns(tables: dict[str, pd.DataFrame], config: UpliftConfig, source: str,
                   feature_config: FeatureConfig | None = None, preset: str = "beauty") -> UpliftTable:
    """Exposure rows of every campaign whose response window the data covers, with features as of each send.

    Raises
    ------
    DataError
        No campaigns table, or no campaign with a complete response window.
    """
    campaigns = campaigns_table(tables)
    retention = int(load_preset(preset)["churn"]["horizon_days"])
    rows = campaign_outcomes(tables, campaigns, config.campaigns.response_window_days, retention)
    rows = rows[rows[COMPLETE]].reset_index(drop=True)
    if rows.empty:
        raise DataError(f"{source}: no campaign's response window ends within the data")
    features = campaign_features(tables, rows, feature_config)
    if C.offer in rows.columns and rows[C.offer].notna().any():  # offers differ in effect: a feature
        features = features.assign(offer=rows[C.offer].to_numpy())
    return UpliftTable(features=features, treatment=treatment_flag(rows), outcomes=rows[list(OUTCOMES)],
                       source=source)


def uplift_table(data: str | Path, mapping: str | Path | None, erasures: ErasureList | None,
                 config: UpliftConfig) -> UpliftTable:
    """From a mapping's ``experiment`` section when it has one, else from the data's campaigns table."""
    parsed = load_mapping(mapping)
    if parsed.experiment:
        from features.experiment import load_experiment

        experiment = load_experiment(data, parsed, erasures)
        return UpliftTable(features=experiment.frame[experiment.features],
                           treatment=experiment.treatment().to_numpy(),
                           outcomes=experiment.frame[experiment.outcomes], source=experiment.source)
    from features.io import load_dataset

    dataset = load_dataset(data, parsed, erasures=erasures)
    return from_campaigns(dataset.tables, config, str(data))
