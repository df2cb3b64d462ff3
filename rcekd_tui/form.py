"""The set-up form as data: fields, preset defaults, overrides, and the CLI's own validation.

The preset is read from disk once per selection (`load_preset`, in a worker); the form's
defaults and every validation while typing come from that dict in memory, exactly as
`rcekd distill --preset P --set ...` builds its config (merge, then from_dict).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from rcekd_core.config import (
    ExperimentConfig,
    from_dict,
    load_preset_dict,
    merge,
    parse_overrides,
)
from rcekd_core.errors import RcekdError


@dataclass(frozen=True)
class Field:
    key: str  # dotted config key, exactly as `--set` takes it
    label: str


GROUPS: dict[str, list[Field]] = {
    "Teacher": [Field("teacher.arch", "arch"), Field("teacher.dim", "dim"), Field("teacher.blocks", "blocks"),
                Field("teacher.max_len", "max_len"), Field("teacher_train.epochs", "epochs"),
                Field("teacher_train.windows", "windows")],
    "Student": [Field("student.arch", "arch"), Field("student.dim", "dim"), Field("student.blocks", "blocks"),
                Field("student.max_len", "max_len"), Field("student_train.epochs", "epochs"),
                Field("student_train.windows", "windows"), Field("student_train.stride", "stride")],
    "RCE-KD": [Field("rcekd.K", "K"), Field("rcekd.L", "L"), Field("rcekd.M", "M"),
               Field("rcekd.T", "T"), Field("rcekd.beta", "beta"), Field("rcekd.lam", "lam"),
               Field("rcekd.tau", "tau")],
    "KD": [Field("kd.lam", "lam"), Field("kd.K", "K")],
    "Run": [Field("seeds", "seeds"), Field("kd_positions", "KD at"), Field("data.protocol", "split"),
            Field("student_train.patience", "patience"), Field("eval.memory_mb", "mem MB")],
}
FIELDS = [f for fields in GROUPS.values() for f in fields]


def _get(tree: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part, {}) if isinstance(tree, dict) else {}
    return tree


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None or value == {} else str(value)


def load_preset(preset: str) -> dict[str, Any]:
    """The preset's settings as written (a name or a YAML path; file IO, raises RcekdError)."""
    return load_preset_dict(preset)


def resolve(base: dict[str, Any], overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """The validated config of a loaded preset plus overrides (no file IO; raises RcekdError)."""
    return from_dict(merge(copy.deepcopy(base), overrides or {}))


def preset_values(base: dict[str, Any]) -> dict[str, str]:
    """The form's text for every field, resolved from a loaded preset (raises RcekdError)."""
    cfg = resolve(base).to_dict()
    values = {f.key: _text(_get(cfg, f.key)) for f in FIELDS}
    values.update({"data.source": cfg["data"]["source"], "data.file": cfg["data"]["file"] or "",
                   "device": cfg["device"], "methods": ",".join(cfg["methods"])})
    return values


def ignored_fields(values: dict[str, str], arch_settings: dict[str, tuple[str, ...]],
                   general: frozenset[str] = frozenset()) -> set[str]:
    """Form keys the chosen backbones do not read (e.g. `student.max_len` of an MF student).

    A general (user–item) student is distilled at its users, so `kd_positions` is moot too; so
    are training windows for a general model, and a stride unless its windows slide.
    """
    out = {"kd_positions"} if values.get("student.arch", "").strip() in general else set()
    for role in ("teacher", "student"):
        train = f"{role}_train"
        if values.get(f"{role}.arch", "").strip() in general:
            out |= {f"{train}.windows", f"{train}.stride"}
        elif values.get(f"{train}.windows", "").strip() != "sliding":
            out.add(f"{train}.stride")
        reads = arch_settings.get(values.get(f"{role}.arch", "").strip())
        if reads is None:  # unknown arch: validation names it; grey out nothing
            continue
        out |= {f.key for f in FIELDS if f.key.startswith(f"{role}.") and f.key != f"{role}.arch"
                and f.key.split(".", 1)[1] not in reads}
    return out


def build_overrides(values: dict[str, str], defaults: dict[str, str]) -> dict[str, Any]:
    """Only what differs from the preset, parsed exactly as `--set key=value` is (raises RcekdError)."""
    items = [f"{k}={v.strip()}" for k, v in values.items() if v.strip() != defaults.get(k, "").strip()]
    return parse_overrides(items)


def parse_workers(text: str) -> int:
    """The form's workers field as `rcekd distill --workers` takes it (raises RcekdError)."""
    from rcekd_core.errors import ConfigError

    text = text.strip()
    if not re.fullmatch(r"[0-9]{1,4}", text) or int(text) < 1:
        raise ConfigError(f"--workers must be a whole number from 1 to 9999 (processes for the student fits); "
                          f"got {text or 'nothing'}")
    return int(text)


def check(base: dict[str, Any], overrides: dict[str, Any]) -> tuple[ExperimentConfig | None, str]:
    """(config, "") when valid, else (None, the one-line message the CLI would print)."""
    try:
        return resolve(base, overrides), ""
    except RcekdError as e:
        return None, str(e)


def data_problem(cfg: ExperimentConfig, n_items: int | None) -> str:
    """What the run would refuse once it reads its data: a data file that is missing, not a
    file or empty (the loader's own check), and list sizes above the catalogue when its item
    count is known (`check_sizes`, as the run does after loading). "" when none."""
    from pathlib import Path

    from rcekd_core.data.formats import check_file
    from rcekd_core.validation import check_sizes

    try:
        if cfg.data.file:
            check_file(Path(cfg.data.file).expanduser())
        if n_items is not None:
            check_sizes(cfg, n_items)
    except RcekdError as e:
        return str(e)
    return ""
