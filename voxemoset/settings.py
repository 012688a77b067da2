"""Generic config machinery: strict frozen sections, the speed-only marker, and YAML read into pydantic models.

A leaf like voxemoset.config: it imports nothing from voxemoset but the errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from voxemoset.errors import UserError

M = TypeVar("M", bound=BaseModel)

# Every model's device setting reads this way; auto by default (voxemoset/models/devices.py resolves it).
DEVICE = "auto (a GPU when there is one) | cpu | cuda | cuda:N"

# Marks a setting that changes how fast or where work runs, never what it produces (batch sizes, devices,
# workers, servers): `output_settings` leaves it out, so no stage key (and no shard) depends on it.
SPEED_ONLY = {"speed_only": True}


class Strict(BaseModel):
    """Base for config sections: unknown keys rejected, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def speed_only(default: Any, **kwargs: Any) -> Any:
    """A config Field marked SPEED_ONLY."""
    return Field(default, json_schema_extra=SPEED_ONLY, **kwargs)


def is_speed_only(field: FieldInfo) -> bool:
    """Whether a config field is marked SPEED_ONLY."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("speed_only"))


def output_settings(section: BaseModel) -> dict:
    """A config section as JSON less its speed-only fields, at any depth: the settings that may key outputs."""
    data = section.model_dump(mode="json")
    return _drop_speed_only(section, data)


def _drop_speed_only(section: BaseModel, data: dict) -> dict:
    kept = {}
    for name, field in type(section).model_fields.items():
        if is_speed_only(field):
            continue
        value = getattr(section, name)
        kept[name] = _drop_speed_only(value, data[name]) if isinstance(value, BaseModel) else data[name]
    return kept


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "config"
        parts.append(f"{where}: {e['msg'].lower()}")
    return "; ".join(parts)


def validate(cls: type[M], data: dict, origin: str = "config") -> M:
    """A config model from data; every mistake becomes one UserError line prefixed by `origin`."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise UserError(f"{origin}: {_describe(e)}") from None


def read_yaml(path: Path | str) -> dict:
    """The top-level mapping of a YAML config file, or one clear UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level")
    return data
