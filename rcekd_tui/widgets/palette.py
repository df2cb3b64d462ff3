"""One colour and one marker per method, the same in every panel and screen.

A series label is `method`, `method/s<seed>` or `run:method/s<seed>`; its method picks the
style, so kd is the same blue in the loss, validation and overlap panels, in compare and in
the sweep screen. Under NO_COLOR every panel would be grey shades: series then differ by
their marker character instead (braille otherwise, the finest plotext draws).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# plotext colour names; rich names for the legend drawn beside the plot
COLORS = {
    "teacher": "gray", "popularity": "gray", "rcekd": "red+", "kd": "blue+", "scratch": "white",
    "rrd": "cyan", "dcd": "green", "cd": "yellow", "unkd": "magenta", "hetcomp": "orange", "de": 213,
}
SPARE_COLORS = ("cyan+", "magenta+", "yellow+", "blue", "red", "white")
MARKERS = {
    "teacher": "-", "popularity": "_", "rcekd": "●", "kd": "+", "scratch": "·", "rrd": "x", "dcd": "o",
    "cd": "*", "unkd": "#", "hetcomp": "%", "de": "@",
}
SPARE_MARKERS = ("&", "=", "~", "$", "^", "?")
RICH = {"gray": "grey62", "red+": "bright_red", "blue+": "bright_blue", "white": "white", "cyan": "cyan",
        "green": "green", "yellow": "yellow", "magenta": "magenta", "orange": "dark_orange", "green+": "bright_green",
        213: "color(213)",
        "cyan+": "bright_cyan", "magenta+": "bright_magenta", "yellow+": "bright_yellow", "blue": "blue",
        "red": "red"}


@dataclass(frozen=True)
class Style:
    color: str | int  # plotext name, or a 256-colour number
    marker: str  # plotext marker: "braille", or one character (NO_COLOR)
    glyph: str  # what the legend shows before the name

    @property
    def rich(self) -> str:
        return RICH.get(self.color, "white")


def no_color() -> bool:
    """https://no-color.org: set (and not empty) means no colour."""
    return bool(os.environ.get("NO_COLOR"))


def method_of(label: str) -> str:
    """'run:kd/s1' → 'kd'."""
    return label.rsplit(":", 1)[-1].split("/", 1)[0]


def _spare(name: str, options: tuple[str, ...]) -> str:
    return options[sum(map(ord, name)) % len(options)]  # stable across processes (hash() is salted)


def style_of(label: str, plain: bool | None = None) -> Style:
    method = method_of(label)
    plain = no_color() if plain is None else plain
    color = COLORS.get(method) or _spare(method, SPARE_COLORS)
    char = MARKERS.get(method) or _spare(method, SPARE_MARKERS)
    return Style(color, char if plain else "braille", char if plain else "━")


def styles_for(labels: list[str], plain: bool | None = None) -> dict[str, Style]:
    """Styles for one screen's labels: each method's own for its first label; a method met
    again (the same method in two compared runs) takes the next spare colour and marker, so
    every line on the screen stays distinct."""
    plain = no_color() if plain is None else plain
    out: dict[str, Style] = {}
    seen: set[str] = set()
    spare = 0
    for label in dict.fromkeys(labels):
        method = method_of(label)
        if method not in seen:
            seen.add(method)
            out[label] = style_of(label, plain)
            continue
        color, char = SPARE_COLORS[spare % len(SPARE_COLORS)], SPARE_MARKERS[spare % len(SPARE_MARKERS)]
        spare += 1
        out[label] = Style(color, char if plain else "braille", char if plain else "━")
    return out
