"""Typed configuration read from YAML: one way to parse, validate and report a bad setting in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from features.exceptions import ConfigError
from features.presets import config_file


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (an empty file is an empty mapping)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    return data


class ConfigModel(BaseModel):
    """Strict, immutable settings: unknown keys are errors, and errors name the first bad field.

    Subclasses set ``DEFAULT_FILE`` (a file name in ``configs/``) for :meth:`load`. Every default lives in the
    class; a YAML file overrides what it names (a section it leaves out keeps the class's values).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    DEFAULT_FILE: ClassVar[str | None] = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str | None = None) -> Any:
        """Parse a mapping.

        Raises
        ------
        ConfigError
            ``<where>: <field.path>: <what is wrong>``.
        """
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "?"
            raise ConfigError(f"{where or cls.__name__}: {field}: {err['msg']}") from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> Any:
        """Read ``path`` (default: ``configs/<DEFAULT_FILE>`` of the project, else the packaged one)."""
        path = Path(path) if path else config_file(str(cls.DEFAULT_FILE))
        return cls.from_dict(read_yaml(path), str(path))
