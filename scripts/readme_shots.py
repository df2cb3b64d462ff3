"""README screenshots from a real run: the live screen's validation tab and the set-up form.

    python scripts/readme_shots.py runs/demo-... docs/     (run it from the folder holding runs/,
                                                            so the title shows no machine path)

Textual's SVG places each run of text once with a textLength; rsvg-convert ignores that
length, so braille curves drift off their cells. Every character is written at its own cell
before converting to PNG (rsvg-convert: apt install librsvg2-bin).
"""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
import sys
from pathlib import Path

TEXT = re.compile(r'<text (?P<pre>class="[^"]*") x="(?P<x>[\d.]+)" y="(?P<y>[\d.]+)" '
                  r'textLength="(?P<len>[\d.]+)" (?P<post>clip-path="[^"]*")>(?P<body>[^<]*)</text>')


def per_cell(svg: str) -> str:
    """Each character of each text run at its own x (the run's width / its characters)."""
    def split(m: re.Match) -> str:
        chars = html.unescape(m["body"])
        if len(chars) <= 1:
            return m[0]
        cell = float(m["len"]) / len(chars)
        x0 = float(m["x"])
        return "".join(f'<text {m["pre"]} x="{x0 + i * cell:.2f}" y="{m["y"]}" {m["post"]}>{html.escape(c)}</text>'
                       for i, c in enumerate(chars) if c not in (" ", "\u00a0"))
    return TEXT.sub(split, svg)


def to_png(svg_path: Path, png_path: Path) -> None:
    fixed = svg_path.with_suffix(".cells.svg")
    fixed.write_text(per_cell(svg_path.read_text(encoding="utf-8")), encoding="utf-8")
    subprocess.run(["rsvg-convert", str(fixed), "-o", str(png_path)], check=True)
    fixed.unlink()


async def shoot(run_dir: Path, out: Path) -> None:
    from rcekd_tui.app import RcekdApp
    from rcekd_tui.screens.run import RunScreen

    app = RcekdApp(runs_root=run_dir.parent, prewarm=False)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.pause()
        screen = RunScreen(run_dir)
        await app.push_screen(screen)
        for _ in range(100):  # until the results are in
            await pilot.pause(0.1)
            if screen.state.status != "waiting" and screen.state.results:
                break
        await pilot.press("2")
        await pilot.pause(0.5)
        app.save_screenshot(str(out / "live-run.svg"))
        await app.pop_screen()
        await pilot.press("n")
        for _ in range(100):
            await pilot.pause(0.1)
            if getattr(app.screen, "defaults", None):
                break
        await pilot.pause(0.5)
        app.save_screenshot(str(out / "setup.svg"))


def main() -> None:
    run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    asyncio.run(shoot(run_dir, out))
    for name in ("live-run", "setup"):
        to_png(out / f"{name}.svg", out / f"{name}.png")
        (out / f"{name}.svg").unlink()
        print(f"wrote {out / name}.png")


if __name__ == "__main__":
    main()
