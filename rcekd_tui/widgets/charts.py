"""Plotext charts of a run: one widget per quantity, redrawn from the series on each batch.

Every series is drawn in its method's style (palette.py), the same in every panel, so one
legend line outside the plots serves a whole screen (the plots keep all their rows). The
screen's view options apply to all its charts at once: log y, EMA smoothing, the x axis, and
a cursor whose exact (unsmoothed) values each chart shows in its bottom border.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from rich.text import Text
from textual.widgets import Static
from textual_plotext import PlotextPlot

from .palette import Style, style_of

# (label, x values, y values) — None values (no evaluation that epoch) are dropped per line.
Line = tuple[str, Sequence[float], Sequence[float | None]]


@dataclass(frozen=True)
class ChartOptions:
    log_y: bool = False
    smooth: float = 0.0  # EMA weight (TensorBoard's smoothing); 0: the values as logged
    x_label: str = "epoch"
    whole_x: bool = True  # ticks at whole numbers (epochs)
    cursor: float | None = None  # an x value: a vertical line there, the values at it in the border


def ema(ys: Sequence[float | None], weight: float) -> list[float | None]:
    """Debiased exponential moving average (as TensorBoard's smoothing); gaps stay gaps."""
    out: list[float | None] = []
    acc, norm = 0.0, 0.0
    for y in ys:
        if y is None or not math.isfinite(y):
            out.append(None)
            continue
        acc, norm = weight * acc + (1 - weight) * y, weight * norm + (1 - weight)
        out.append(acc / norm)
    return out


def value_at(xs: Sequence[float], ys: Sequence[float | None], x: float) -> float | None:
    """The logged value at x (the nearest point at or before it)."""
    best = None
    for xi, yi in zip(xs, ys):
        if xi <= x and yi is not None:
            best = yi
    return best


class LineChart(PlotextPlot):
    """A titled line chart with an optional horizontal reference line (e.g. the teacher)."""

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.lines: list[Line] = []
        self.reference: tuple[str, float] | None = None
        self.options = ChartOptions()
        self.line_styles: dict[str, Style] = {}  # a label's style when not its method's (palette.styles_for)

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = self.chart_title
        self.redraw()

    def show(self, lines: Iterable[Line], reference: tuple[str, float] | None = None,
             options: ChartOptions | None = None, styles: dict[str, Style] | None = None) -> None:
        self.lines, self.reference = list(lines), reference
        if options is not None:
            self.options = options
        if styles is not None:
            self.line_styles = styles
        self.redraw()

    def style(self, label: str) -> Style:
        return self.line_styles.get(label) or style_of(label)

    def set_options(self, options: ChartOptions) -> None:
        self.options = options
        self.redraw()

    def drawn(self) -> list[tuple[str, list[float], list[float]]]:
        """What the chart plots: each line's points after smoothing and the log filter."""
        opt, out = self.options, []
        for label, xs, ys in self.lines:
            shown = ema(ys, opt.smooth) if opt.smooth else list(ys)
            pts = [(x, y) for x, y in zip(xs, shown)
                   if y is not None and math.isfinite(y) and (not opt.log_y or y > 0)]
            if pts:
                out.append((label, [p[0] for p in pts], [p[1] for p in pts]))
        return out

    def redraw(self) -> None:
        plt, opt = self.plt, self.options
        plt.clear_data()
        plt.clear_figure()
        xs_all: list[float] = []
        for label, xs, ys in self.drawn():
            style = self.style(label)
            xs_all += xs
            plt.plot(xs, ys, marker=style.marker, color=style.color)
            if len(xs) == 1:  # a one-epoch series: a visible point, not a lone braille dot
                plt.scatter(xs, ys, marker="●" if style.marker == "braille" else style.marker, color=style.color)
        if self.reference is not None and xs_all and (not opt.log_y or self.reference[1] > 0):
            plt.hline(self.reference[1], self.style(self.reference[0]).color)
        if not xs_all:
            plt.title("waiting for epochs…")
        elif opt.whole_x:  # whole epochs only; plotext would label 1.00 1.50 …
            lo, hi = int(min(xs_all)), int(max(xs_all))
            step = max(1, -(-(hi - lo) // 6))
            plt.xticks(list(range(lo, hi + 1, step)))
        if opt.log_y and xs_all:
            plt.yscale("log")
        if opt.cursor is not None and xs_all:
            plt.vline(opt.cursor, "gray")
        plt.xlabel(opt.x_label)
        self.border_subtitle = self.readout()
        self.refresh()

    def readout(self) -> str:
        """The exact values at the cursor, one per line, for the bottom border."""
        x = self.options.cursor
        if x is None:
            return ""
        values = [(label, value_at(xs, ys, x)) for label, xs, ys in self.lines]
        shown = " ".join(f"{label} {v:.4g}" for label, v in values if v is not None)
        where = f"{self.options.x_label} {x:g}"
        return f"{where}: {shown}" if shown else where


def legend(labels: Iterable[str], reference: str | None = None, styles: dict[str, Style] | None = None) -> Text:
    """One line naming every series in its style: the legend of all the screen's charts."""
    out = Text()
    styles = styles or {}
    for label in dict.fromkeys(labels):
        style = styles.get(label) or style_of(label)
        out.append(f"{style.glyph} ", style=style.rich)
        out.append(f"{label}  ")
    if reference:
        style = style_of(reference)
        out.append("─ ", style=style.rich)
        out.append(f"{reference} (reference)")
    return out


class Legend(Static):
    """The legend line under a screen's charts, with the view options in force."""

    def show(self, labels: Iterable[str], reference: str | None = None, note: str = "",
             styles: dict[str, Style] | None = None) -> None:
        text = legend(labels, reference, styles)
        if note:
            text.append(f"· {note}", style="dim")
        self.update(text)


def view_notes(view: ChartOptions) -> list[str]:
    """The view options in force, for the legend line."""
    return [n for n in ("log y" if view.log_y else "", f"EMA {view.smooth:g}" if view.smooth else "",
                        "x: minutes of training" if view.x_label != "epoch" else "") if n]


class ChartKeys:
    """The chart keys a screen shares (`l` log y, `m` smoothing); the screen has `view` and `redraw()`."""

    SMOOTHING = (0.0, 0.6, 0.9)  # EMA weights `m` cycles through
    view: ChartOptions

    def redraw(self) -> None:
        raise NotImplementedError

    def set_view(self, **changes) -> None:
        self.view = replace(self.view, **changes)
        self.redraw()

    def action_log_y(self) -> None:
        self.set_view(log_y=not self.view.log_y)

    def action_smooth(self) -> None:
        i = self.SMOOTHING.index(self.view.smooth) if self.view.smooth in self.SMOOTHING else 0
        self.set_view(smooth=self.SMOOTHING[(i + 1) % len(self.SMOOTHING)])
