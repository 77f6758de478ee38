"""Industry presets (configs/presets/*.yaml): churn horizon, recommendation defaults, generator parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from features.exceptions import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
PRESET_DIR = CONFIG_DIR / "presets"


def preset_names() -> list[str]:
    """Names of the presets shipped in ``configs/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(preset: str | Path) -> dict[str, Any]:
    """Load a preset by name (``beauty``) or by path to a YAML file.

    Parameters
    ----------
    preset
        A shipped preset's name or the path of a preset file.

    Returns
    -------
    dict
        The parsed preset, with at least ``name``, ``churn`` and ``recommend`` sections.

    Raises
    ------
    ConfigError
        The preset does not exist or is not a mapping.
    """
    path = Path(preset)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESET_DIR / f"{preset}.yaml"
        if not path.exists():
            raise ConfigError(f"preset '{preset}' does not exist (choose one of: {', '.join(preset_names())})")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read preset ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of sections")
    for section in ("churn", "recommend"):
        if not isinstance(data.get(section), dict):
            raise ConfigError(f"{path}: section '{section}' is missing")
    data.setdefault("name", path.stem)
    return data
