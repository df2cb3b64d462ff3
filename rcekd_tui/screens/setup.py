"""Set-up screen: choose data, sizes, methods and KD settings; Start launches a detached run."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static

from .. import launch
from ..form import (
    FIELDS,
    GROUPS,
    build_overrides,
    check,
    data_problem,
    ignored_fields,
    load_preset,
    parse_workers,
    preset_values,
)
from ..messages import DatasetStats, EngineReady
from ..widgets.checkbox import MarkCheckbox

DEVICES = ["auto", "cpu", "cuda"]


class SetupScreen(Screen):
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, runs_root: Path, preset: str = "demo"):
        super().__init__()
        self.runs_root = Path(runs_root)
        self.preset = preset
        self.defaults: dict[str, str] = {}
        self.base: dict = {}  # the preset's settings, read once per selection (off the UI thread)
        self._stats_for = None  # the data settings whose statistics were last requested
        self.n_items: int | None = None  # their catalogue size once known: list sizes are checked against it
        self.methods: list[str] = []
        self.presets: list[str] = []
        self.arch_settings: dict[str, tuple[str, ...]] = {}
        self.general: frozenset[str] = frozenset()
        self.overrides: dict | None = None
        self.fit_processes = 1  # student-fit processes (--workers): a flag of the run, not a config key
        self.error = "loading the engine…"
        self._filling = False  # programmatic fills must not each trigger validation

    def compose(self) -> ComposeResult:
        yield Static(f"[b]New run[/b] in {self.runs_root}", id="setup-title")
        with VerticalScroll(id="setup-form"):
            with Grid(classes="setup-row top"):
                yield Label("preset")
                yield Select([], id="preset", compact=True, allow_blank=True)
                yield Label("dataset")
                yield Select([], id="data-source", compact=True, allow_blank=True)
                yield Label("device")
                yield Select([(d, d) for d in DEVICES], id="device", value="auto",
                             compact=True, allow_blank=False)
                yield Label("workers")
                yield Input("1", id="workers", compact=True, tooltip="processes for the method x seed "
                            "student fits (rcekd distill --workers); the results are those of one process")
            with Horizontal(classes="setup-line"):
                yield Label("data file", classes="group")
                yield Input(placeholder="CSV/TSV path (dataset 'file')", id="data-file", compact=True)
            yield Static("", id="data-stats")
            with Horizontal(classes="setup-line"):
                yield Label("methods", classes="group")
                yield Grid(id="methods")
            for group, fields in GROUPS.items():
                with Horizontal(classes="setup-line"):
                    yield Label(group, classes="group")
                    with Grid(classes="fields"):
                        for f in fields:
                            yield Label(f.label)
                            yield Input(id=_wid(f.key), compact=True, classes="field")
        yield Static(self.error, id="setup-error")
        with Horizontal(id="setup-actions"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Static("", id="setup-command")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#setup-form").disabled = True
        self.load_engine(self.preset)

    @work(thread=True, exclusive=True, group="engine")
    def load_engine(self, preset: str) -> None:
        """Import the engine (torch: seconds) off the UI thread, then read the preset once."""
        from rcekd_core.config import list_presets
        from rcekd_core.data.sources import SOURCES
        from rcekd_core.errors import RcekdError
        from rcekd_core.kd.registry import method_names
        from rcekd_core.models.registry import GENERAL, model_settings

        try:
            base = load_preset(preset)
            defaults, error = preset_values(base), ""
        except RcekdError as e:
            base, defaults, error = {}, {}, str(e)
        self.post_message(EngineReady(method_names(), list(list_presets()),
                                      {n: s.description for n, s in SOURCES.items()}, defaults,
                                      model_settings(), frozenset(GENERAL), error, base))

    def on_engine_ready(self, msg: EngineReady) -> None:
        self._filling = True
        if not self.methods:
            self.methods = msg.methods
            box = self.query_one("#methods")
            box.mount_all(MarkCheckbox(m, id=f"m-{m}", compact=True) for m in msg.methods)
        presets = self.query_one("#preset", Select)
        if not self.presets:
            self.presets = msg.presets
            presets.set_options([(p, p) for p in msg.presets])
            self.query_one("#data-source", Select).set_options([(n, n) for n in msg.sources])
        self.query_one("#setup-form").disabled = False
        self.arch_settings, self.general = msg.arch_settings, msg.general
        if msg.defaults:
            self.defaults, self.base = msg.defaults, msg.preset
            if self.preset in self.presets:  # a preset given as a YAML path is not in the list
                presets.value = self.preset
            self.fill(msg.defaults)
        self._filling = False
        self.error = msg.error
        self.revalidate()
        self.query_one("#preset", Select).focus()

    def fill(self, values: dict[str, str]) -> None:
        for key, text in values.items():
            if key == "methods":
                chosen = set(text.split(","))
                for m in self.methods:
                    self.query_one(f"#m-{m}", Checkbox).value = m in chosen
            elif key in ("device", "data.source"):
                self.query_one("#" + _wid(key), Select).value = text
            else:
                box = self.query_one("#data-file" if key == "data.file" else "#" + _wid(key), Input)
                box.value = text
                box.cursor_position = 0  # a narrow field shows the value's start ("sasrec", not "asrec")

    def values(self) -> dict[str, str]:
        vals = {key: self.query_one("#" + _wid(key), Input).value for key in self.defaults
                if key not in ("methods", "device", "data.source", "data.file")}
        vals["methods"] = ",".join(m for m in self.methods if self.query_one(f"#m-{m}", Checkbox).value)
        for key in ("device", "data.source"):
            value = self.query_one("#" + _wid(key), Select).value
            vals[key] = value if isinstance(value, str) else ""
        vals["data.file"] = self.query_one("#data-file", Input).value
        return vals

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed, "#device, #data-source")
    def changed(self) -> None:
        if not self._filling and self.defaults:
            self.revalidate()

    @on(Select.Changed, "#preset")
    def preset_changed(self, event: Select.Changed) -> None:
        if self._filling or not isinstance(event.value, str) or event.value == self.preset:
            return
        self.preset = event.value
        self.load_engine(self.preset)

    def revalidate(self) -> None:
        """The CLI's own parsing and validation; its one-line message shows under the form.

        Cheap enough for every keystroke: the preset is in memory (self.base), nothing is read.
        """
        from rcekd_core.errors import RcekdError

        if self.defaults:
            try:
                self.overrides = build_overrides(self.values(), self.defaults)
                self.fit_processes = parse_workers(self.query_one("#workers", Input).value)
                cfg, self.error = check(self.base, self.overrides)
            except RcekdError as e:
                cfg, self.error = None, str(e)
            if cfg is not None and cfg.data != self._stats_for:  # statistics only when the data changes
                self._stats_for, self.n_items = cfg.data, None
                self.load_stats(cfg.data)
            if cfg is not None:  # what the run itself would refuse after reading its data
                self.error = data_problem(cfg, self.n_items)
        self.grey_out_ignored()
        bad = bool(self.error)
        err = self.query_one("#setup-error", Static)
        err.set_class(bad, "invalid")
        err.update(f"✗ {self.error}" if bad else "✓ valid")
        self.query_one("#start", Button).disabled = bad
        cmd = launch.build_distill_command(self.preset, Path("RUN_DIR"), self.overrides or {}, self.fit_processes)
        self.query_one("#setup-command", Static).update("rcekd " + " ".join(cmd[3:]) if not bad else "")

    def grey_out_ignored(self) -> None:
        """Disable the fields the chosen backbones ignore (MF has no blocks, no window, no positions)."""
        if not self.defaults:
            return
        ignored = ignored_fields(self.values(), self.arch_settings, self.general)
        for f in FIELDS:
            box = self.query_one("#" + _wid(f.key), Input)
            box.disabled = f.key in ignored
            box.tooltip = "not used with these backbones" if f.key in ignored else None

    @work(thread=True, exclusive=True, group="stats")
    def load_stats(self, data_cfg) -> None:
        """Statistics when cheap: the published ones, or the data set if generated/cached locally."""
        from rcekd_core.data.loader import cache_key, dataset_info, resolve
        from rcekd_core.data.sources import rcekd_home

        source, kcore = resolve(data_cfg)
        if source.expected:
            self.post_message(DatasetStats(source.name, dict(source.expected), source.description))
        cached = (rcekd_home() / "processed" / f"{cache_key(data_cfg, source, kcore)}.npz").is_file()
        if source.name.startswith("demo") or cached:
            try:
                self.post_message(DatasetStats(source.name, dataset_info(data_cfg), source.description))
            except Exception as e:  # a data problem is reported at start by the engine anyway
                self.post_message(DatasetStats(source.name, {}, f"{source.description}: {e}"))
        elif not source.expected:
            self.post_message(DatasetStats(source.name, {}, source.description))

    def on_dataset_stats(self, msg: DatasetStats) -> None:
        items = msg.stats.get("items")
        if isinstance(items, int) and not isinstance(items, bool):
            self.n_items = items
            self.revalidate()
        keys = ("users", "items", "interactions", "mean_length")
        stats = " · ".join(f"{k} {msg.stats[k]}" for k in keys if k in msg.stats)
        self.query_one("#data-stats", Static).update(f"[b]{msg.source}[/b]: {msg.note}" + (f" — {stats}" if stats else ""))

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        from .run import RunScreen

        self.revalidate()
        if self.error or self.overrides is None:
            self.app.bell()
            self.notify(self.error or "form not ready", severity="error")
            return
        run_dir = launch.new_run_dir(self.runs_root, self.preset)
        process = launch.start_run(self.preset, run_dir, self.overrides, self.fit_processes)
        self.app.switch_screen(RunScreen(run_dir, process=process))


def _wid(key: str) -> str:
    """Widget id for a dotted config key."""
    return key.replace(".", "-").replace("_", "-")
