"""Presets and --set overrides turned into a validated ExperimentConfig."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .settings import (  # noqa: F401  re-exported: the dataclasses are part of this interface
    CDConfig, DataConfig, DCDConfig, DEConfig, EvalConfig, ExperimentConfig, HetCompConfig,
    KDConfig, ModelConfig, RCEKDConfig, RRDConfig, TrainConfig, UnKDConfig,
)
from .validation import check_sizes, validate  # noqa: F401  (check_sizes re-exported)

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"

def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping of settings; got {value!r}")
        return _build(tp, value, key + ".")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, key)
    if origin is list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"'{key}' must be a list (e.g. a,b,c); got {value!r}")
        return [_coerce(v.strip() if isinstance(v, str) else v, args[0], key) for v in value]
    try:
        if tp is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            if isinstance(value, bool):
                return value
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"'{key}' must be {name}; got {value!r} (fix the preset or the --set value)")


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in values:
        if k not in names:
            raise ConfigError(
                f"unknown setting '{prefix}{k}'; known here: {', '.join(sorted(names))}"
            )
    base = cls()
    for k, v in values.items():
        if dataclasses.is_dataclass(hints[k]) and isinstance(v, dict):
            merged = dataclasses.asdict(getattr(base, k))
            merged.update(v)
            v = merged
        setattr(base, k, _coerce(v, hints[k], prefix + k))
    return base


def _deep_set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        child = node.get(p)
        if not isinstance(child, dict):
            child = {}
            node[p] = child
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ['a.b=3', 'methods=kd,rcekd'] into a nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value; got '{item}' (e.g. --set rcekd.K=100)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value; got '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _deep_set(tree, key, value)
    return tree


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def preset_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("RCEKD_PRESETS"):
        dirs.append(Path(os.environ["RCEKD_PRESETS"]))
    dirs.append(PRESET_DIR)
    return dirs


def list_presets() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in preset_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                found.setdefault(p.stem, p)
    return found


def preset_path(name: str) -> Path:
    if name.endswith((".yaml", ".yml")):
        p = Path(name)
        if not p.is_file():
            raise ConfigError(f"preset file '{name}' does not exist; pass an existing YAML file")
        return p
    presets = list_presets()
    if name not in presets:
        raise ConfigError(
            f"unknown preset '{name}'; choose one of: {', '.join(presets) or '(none found)'}"
            " (see `rcekd presets list`) or pass a path to a YAML file"
        )
    return presets[name]


def load_preset_dict(name: str) -> dict[str, Any]:
    path = preset_path(name)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"preset '{path}' is not valid YAML ({e.__class__.__name__}); fix the file")
    if not isinstance(raw, dict):
        raise ConfigError(f"preset '{path}' must be a mapping of settings")
    raw.setdefault("name", path.stem)
    return raw


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
    cfg = _build(ExperimentConfig, values)
    validate(cfg)
    return cfg


def load_config(preset: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    return from_dict(merge(load_preset_dict(preset), overrides or {}))


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
