"""Plotext charts of a run: one widget per quantity, redrawn from the series on each batch."""

from __future__ import annotations

from typing import Iterable, Sequence

from textual_plotext import PlotextPlot

# (label, epochs, values) — None values (no evaluation that epoch) are dropped per line.
Line = tuple[str, Sequence[int], Sequence[float | None]]


class LineChart(PlotextPlot):
    """A titled line chart with an optional horizontal reference line (e.g. the teacher)."""

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.lines: list[Line] = []
        self.reference: tuple[str, float] | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = self.chart_title
        self.redraw()

    def show(self, lines: Iterable[Line], reference: tuple[str, float] | None = None) -> None:
        self.lines, self.reference = list(lines), reference
        self.redraw()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs_all: list[int] = []
        for label, xs, ys in self.lines:
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if pts:
                xs_all += [p[0] for p in pts]
                plt.plot([p[0] for p in pts], [p[1] for p in pts], label=label, marker="braille")
        if self.reference is not None and xs_all:
            # drawn as a flat series so it gets a legend entry next to the methods
            label, y = self.reference
            plt.plot([min(xs_all), max(xs_all)], [y, y], label=label, color="gray", marker="-")
        if not xs_all:
            plt.title("waiting for epochs…")
        if xs_all:  # whole epochs only; plotext would label 1.00 1.50 …
            lo, hi = min(xs_all), max(xs_all)
            step = max(1, -(-(hi - lo) // 6))
            plt.xticks(list(range(lo, hi + 1, step)))
        plt.xlabel("epoch")
        self.refresh()
