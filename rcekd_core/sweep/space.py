"""What a sweep varies: `--param` specs, parsed, then checked against the config.

    rcekd.lam=log:0.001..10   log-uniform between the two ends
    rcekd.lam=0..1            uniform; integer values when the setting is an integer
    rcekd.beta=1,3,5          a list of values (numbers parsed): tried as given

A parameter is `<method>.<setting>`: it lives in its method's own section, so the best values
of several methods combine in one config (`rcekd sweep confirm`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError

Kind = Literal["log", "uniform", "choice"]
Value = bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One swept setting: a range (log or uniform) or a list of choices."""

    name: str  # <method>.<setting>
    kind: Kind
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Value, ...] = ()
    integer: bool = False  # a range over integers
    spec: str = ""  # as given on the command line

    @property
    def method(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def setting(self) -> str:
        return self.name.split(".", 1)[1]

    def suggest(self, trial) -> Value:
        """This parameter's value for an Optuna trial (a value fixed in the trial is returned as is)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        log = self.kind == "log"
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=log)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "kind": self.kind, "low": self.low, "high": self.high,
                "choices": list(self.choices), "integer": self.integer}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Param:
        return cls(d["name"], d["kind"], d.get("low"), d.get("high"), tuple(d.get("choices") or ()),
                   bool(d.get("integer")), d.get("spec", ""))


def parse_number(text: str) -> int | float | str:
    """'3' → 3, '1e-4' → 0.0001, anything else stays text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_param(text: str) -> Param:
    """A `--param` spec, syntax only (the config check is `bind`)."""
    fix = "e.g. --param rcekd.lam=log:0.001..10, --param rcekd.beta=1,3,5"
    if "=" not in text:
        raise ConfigError(f"--param expects <method>.<setting>=<values>; got '{text}' ({fix})")
    name, raw = (s.strip() for s in text.split("=", 1))
    parts = name.split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--param '{text}': the name must be <method>.<setting>, such as rcekd.lam; got '{name}'")
    if not raw:
        raise ConfigError(f"--param '{text}' gives no values ({fix})")
    log = raw.startswith("log:")
    body = raw[4:] if log else raw
    if ".." in body:
        ends = body.split("..", 1)
        low, high = (parse_number(e.strip()) for e in ends)
        if not all(isinstance(e, (int, float)) and math.isfinite(e) for e in (low, high)):
            raise ConfigError(f"--param '{text}': a range needs two finite numbers, low..high (e.g. 0.001..10)")
        if not low < high:
            raise ConfigError(f"--param '{text}': the range's low end must be below its high end")
        if log and low <= 0:
            raise ConfigError(f"--param '{text}': a log range needs a low end above 0 (e.g. log:0.0001..1)")
        integer = isinstance(low, int) and isinstance(high, int)
        return Param(name, "log" if log else "uniform", low, high, integer=integer, spec=text)
    if log:
        raise ConfigError(f"--param '{text}': log: needs a range low..high (e.g. log:0.001..10)")
    items = [s.strip() for s in body.split(",")]
    if any(not s for s in items):
        raise ConfigError(f"--param '{text}' has an empty value; separate values by single commas (1,3,5)")
    values = tuple(parse_number(s) for s in items)
    if len(set(values)) != len(values):
        raise ConfigError(f"--param '{text}' lists a value twice; give each once")
    return Param(name, "choice", choices=values, spec=text)


def bind(params: list[Param], base: dict[str, Any], methods: list[str], n_items: int | None = None) -> list[Param]:
    """The params checked against the config: a known method of the sweep, a known setting of
    it, values (both ends of a range) that the config accepts; choices in the setting's type."""
    from ..config import method_sections
    from ..kd.registry import METHODS

    sections = method_sections()
    seen: set[str] = set()
    out = []
    for p in params:
        if p.name in seen:
            raise ConfigError(f"--param {p.name} is given twice; give each parameter once")
        seen.add(p.name)
        if p.method not in sections:
            if p.method in METHODS:
                raise ConfigError(f"--param {p.name}: {p.method} has no settings to sweep")
            raise ConfigError(f"--param {p.name}: unknown method '{p.method}'; choose from: {', '.join(sections)}")
        if p.method not in methods:
            raise ConfigError(f"--param {p.name}: {p.method} is not in --methods ({','.join(methods)}); add it")
        cls = sections[p.method]
        fields = [f.name for f in dataclasses.fields(cls)]
        if p.setting not in fields:
            raise ConfigError(f"--param {p.name}: {p.method} has no setting '{p.setting}'; known: {', '.join(fields)}")
        tp = typing.get_type_hints(cls)[p.setting]
        if typing.get_origin(tp) in (list, dict) or tp in (list, dict):
            raise ConfigError(f"--param {p.name}: a list setting cannot be swept; fix it with --set")
        if p.kind != "choice":
            p = _typed_range(p, tp)
        values = p.choices if p.kind == "choice" else (p.low, p.high)
        checked = tuple(_accepted(p, v, base, n_items) for v in values)
        out.append(dataclasses.replace(p, choices=checked) if p.kind == "choice" else p)
    return out


def _typed_range(p: Param, tp: Any) -> Param:
    inner = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(inner) == 1:  # Optional[float]: a float
        tp = inner[0]
    if tp is int:
        if not p.integer:
            raise ConfigError(f"--param {p.spec}: {p.name} is an integer; give integer ends (e.g. 5..50)")
        if p.kind == "log" and p.low < 1:
            raise ConfigError(f"--param {p.spec}: an integer log range starts at 1 or above")
        return p
    if tp is float:
        return dataclasses.replace(p, low=float(p.low), high=float(p.high), integer=False)
    raise ConfigError(f"--param {p.spec}: {p.name} is not a number; list its values instead "
                      f"(e.g. {p.name}=a,b)")


def _accepted(p: Param, value: Value, base: dict[str, Any], n_items: int | None) -> Value:
    """The value as the config reads it (type coerced), or the config's complaint."""
    from ..config import check_sizes, from_dict, merge

    try:
        cfg = from_dict(merge(base, {p.method: {p.setting: value}}))
        if n_items is not None:
            check_sizes(cfg, n_items)
    except ConfigError as e:
        raise ConfigError(f"--param {p.spec}: {e}") from None
    return getattr(cfg.method(p.method), p.setting)


def of_method(params: list[Param], method: str) -> list[Param]:
    return [p for p in params if p.method == method]


def grid(params: list[Param]) -> list[dict[str, Value]]:
    """Every combination of the params' choices (one empty point when nothing is swept)."""
    ranges = [p.spec for p in params if p.kind != "choice"]
    if ranges:
        raise ConfigError(f"--sampler grid needs lists of values, not ranges: {', '.join(ranges)} "
                          "(give values, e.g. rcekd.lam=0.01,0.1,1, or use --sampler tpe)")
    names = [p.name for p in params]
    return [dict(zip(names, combo)) for combo in itertools.product(*(p.choices for p in params))]


def as_overrides(values: dict[str, Value]) -> dict[str, dict[str, Value]]:
    """{'rcekd.lam': 0.1, 'kd.lam': 0.01} → {'rcekd': {'lam': 0.1}, 'kd': {'lam': 0.01}}."""
    out: dict[str, dict[str, Value]] = {}
    for name, v in values.items():
        method, setting = name.split(".", 1)
        out.setdefault(method, {})[setting] = v
    return out
