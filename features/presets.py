"""Where configuration files are found, and the industry presets (configs/presets/*.yaml): churn horizon,
recommendation defaults, generator parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from features.exceptions import ConfigError

# The defaults ship inside the distribution as the package-data folder `configs` beside this package (in a
# checkout and in site-packages alike), so every command works from any working directory. Found by path, not
# by `import configs`: a project's own configs/ folder on sys.path would shadow it in an editable install.
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
PRESET_DIR = CONFIG_DIR / "presets"
# A project overrides a default file by putting its own under this folder of the working directory.
PROJECT_CONFIG_DIR = Path("configs")


def config_file(name: str | Path) -> Path:
    """The configuration file ``name`` (e.g. ``churn.yaml``, ``presets/beauty.yaml``) in effect.

    The project's ``configs/<name>`` in the working directory when there is one, else the packaged default.
    """
    local = Path.cwd() / PROJECT_CONFIG_DIR / name
    return local if local.is_file() else CONFIG_DIR / name


def preset_names() -> list[str]:
    """Names of the presets shipped in ``configs/presets`` and those of the project's ``configs/presets``."""
    folders = (CONFIG_DIR / "presets", Path.cwd() / PROJECT_CONFIG_DIR / "presets")
    return sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})


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
        path = config_file(Path("presets") / f"{preset}.yaml")
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
