"""Presets and --set overrides turned into a validated ExperimentConfig."""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .settings import (  # noqa: F401  re-exported: the dataclasses are part of this interface
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    MethodSettings,
    ModelConfig,
    TrainConfig,
)
from .validation import check_sizes, validate  # noqa: F401  (check_sizes re-exported)

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"

def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        if isinstance(value, str) and value in args:
            return value
        raise ConfigError(f"unknown {key} '{value}'; choose {' or '.join(', '.join(args).rsplit(', ', 1))}")
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
            if value is None or isinstance(value, (dict, list)):  # YAML's empty value is not "None"
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"'{key}' must be {name}; got {value!r} (fix the preset or the --set value)")


def method_sections() -> dict[str, type[MethodSettings]]:
    """The settings class of every registered KD method that has settings, by method name."""
    from .kd.registry import (
        METHODS,  # late: the registry imports torch and every method
    )

    return {name: m.settings for name, m in METHODS.items() if m.settings is not None}


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - {"method_settings"}
    sections = method_sections() if cls is ExperimentConfig else {}
    for k in values:
        if k not in names and k not in sections:
            known = sorted(names | set(sections))
            raise ConfigError(f"unknown setting '{prefix}{k}'; known here: {', '.join(known)}")
    base = cls()
    for k, v in values.items():
        if k in sections:
            continue
        if dataclasses.is_dataclass(hints[k]) and isinstance(v, dict):
            merged = dataclasses.asdict(getattr(base, k))
            merged.update(v)
            v = merged
        setattr(base, k, _coerce(v, hints[k], prefix + k))
    if sections:
        base.method_settings = {name: tp() if values.get(name) is None else _coerce(values[name], tp, name)
                                for name, tp in sections.items()}
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice (the later one would silently win)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` brings defaults, not a repeat
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"the key '{key}' is given twice",
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_preset_dict(name: str) -> dict[str, Any]:
    path = preset_path(name)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"preset '{path}' is not UTF-8 text; save it as UTF-8")
    except OSError as e:
        raise ConfigError(f"cannot read preset '{path}' ({e.strerror or e.__class__.__name__}); check the path")
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or e.__class__.__name__
        raise ConfigError(f"preset '{path}' is not valid YAML{line} ({problem}); fix the file")
    if not isinstance(raw, dict):
        raise ConfigError(f"preset '{path}' must be a mapping of settings")
    raw.setdefault("name", re.sub(r"[^A-Za-z0-9._-]", "-", path.stem).lstrip("._-") or "run")
    return raw


def default_config() -> ExperimentConfig:
    """Every setting at its default, with one section per registered KD method (not validated)."""
    return _build(ExperimentConfig, {})


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
    cfg = _build(ExperimentConfig, values)
    validate(cfg)
    return cfg


def load_config(preset: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    return from_dict(merge(load_preset_dict(preset), overrides or {}))

