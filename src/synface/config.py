"""Typed configuration: frozen dataclasses loadable from YAML and overridable from the CLI.

Precedence is code defaults < YAML file < ``key=value`` overrides. Every value is
checked against the field's type hint on the way in, unknown keys are refused with
the closest valid names, and each config's ``validate`` rejects impossible values.
Errors name the full dotted field path (``generate.mixup.phi: 1.5 is outside [0, 1]``).

A stage declares its config like this::

    @dataclass(frozen=True)
    class MixupConfig(ConfigBase):
        mode: Literal["none", "fixed", "grid"] = "none"
        phi: float = 1.0

        def validate(self) -> None:
            require(0.0 <= self.phi <= 1.0, "phi", f"{self.phi} is outside [0, 1]")
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from synface.errors import ConfigError

C = TypeVar("C", bound="ConfigBase")


def require(condition: bool, field: str, message: str) -> None:
    """Raise ``ConfigError("field: message")`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{field}: {message}")


def _prefixed(error: ConfigError, prefix: str) -> ConfigError:
    return ConfigError(f"{prefix}.{error}" if prefix else str(error))


class ConfigBase:
    """Mixin for frozen dataclass configs (see the module docstring)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check cross-field and range constraints; raise via :func:`require`."""

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None, where: str = "") -> C:
        """Build from a plain mapping, checking names and types.

        Args:
            data: field name -> value; nested configs are nested mappings.
            where: dotted path of this config inside its parent, used in messages.

        Raises:
            ConfigError: an unknown key, a value of the wrong type, or a failed check.
        """
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(f"{path}: unknown key{hint} valid keys: {', '.join(fields)}")
            kwargs[key] = _coerce(value, hints[key], path)
        try:
            return cls(**kwargs)
        except ConfigError as error:
            if where and not str(error).startswith(where):
                raise _prefixed(error, where) from None
            raise

    @classmethod
    def from_yaml(cls: type[C], path: str | Path, overrides: Sequence[str] = ()) -> C:
        """Load a YAML file (a mapping at top level), then apply ``key=value`` overrides."""
        data = load_yaml_mapping(path)
        return cls.from_dict(data).with_overrides(overrides) if overrides else cls.from_dict(data)

    def with_overrides(self: C, overrides: Sequence[str]) -> C:
        """Return a copy with ``dotted.key=value`` overrides applied (values parsed as YAML)."""
        data = self.to_dict()
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"override {item!r}: expected dotted.key=value")
            value = yaml.safe_load(raw) if raw.strip() else ""
            node = data
            parts = key.strip().split(".")
            for depth, part in enumerate(parts[:-1]):
                child = node.get(part)
                if not isinstance(child, dict):
                    where = ".".join(parts[: depth + 1])
                    raise ConfigError(f"{where}: unknown section in override {item!r}")
                node = child
            node[parts[-1]] = value
        return type(self).from_dict(data)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    # -- output ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-safe mapping (tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Serialise to YAML; also write it atomically when ``path`` is given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            from synface.io import atomic_write_text

            atomic_write_text(path, text)
        return text


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping; clear errors for anything else."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys to values")
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check ``value`` against the type ``hint``; convert lists to tuples and ints to floats."""
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, path)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{path}: {value!r} is not a valid {_type_name(hint)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if isinstance(hint, type) and issubclass(hint, ConfigBase):
        return hint.from_dict(value, where=path)
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
            items = [_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_hint = args[0] if args else Any
            items = [_coerce(v, item_hint, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        key_hint, value_hint = args or (Any, Any)
        return {
            _coerce(k, key_hint, f"{path}.{k}"): _coerce(v, value_hint, f"{path}.{k}")
            for k, v in value.items()
        }
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{path}: expected a path, got {value!r}")
        return Path(value)
    raise TypeError(f"config field {path} has an unsupported type hint {hint!r}")
