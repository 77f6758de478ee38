"""The recommender configuration is parsed into typed settings when it is read, so a bad one stops at once."""

from __future__ import annotations

import pytest
import yaml

from features.exceptions import ConfigError
from features.presets import CONFIG_DIR
from models.recommenders.config import evaluation_settings, load_config


def _write(tmp_path, change) -> str:
    config = yaml.safe_load((CONFIG_DIR / "recommender.yaml").read_text())
    change(config)
    path = tmp_path / "recommender.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_shipped_evaluation_section_is_typed():
    settings = evaluation_settings(load_config())
    assert settings.metric == f"ndcg@{settings.k_ndcg}"
    assert settings.peers["tifu_knn"].model == "tifu_knn" and settings.peers["tifu_knn"].grid["alpha"]


@pytest.mark.parametrize("change, fragment", [
    (lambda c: c["evaluation"]["peers"]["als"].update(grid="wide"), "evaluation: peers.als.grid"),
    (lambda c: c["evaluation"].update(k_ndcg=0), "evaluation: k_ndcg"),
    (lambda c: c["evaluation"]["peers"]["ease"].pop("model"), "evaluation: peers.ease.model"),
    (lambda c: c["evaluation"].update(test_dayz=30), "evaluation: test_dayz"),
])
def test_a_bad_evaluation_section_is_one_error_naming_the_field(tmp_path, change, fragment):
    path = _write(tmp_path, change)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert fragment in str(err.value) and path in str(err.value)
