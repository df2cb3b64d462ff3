"""Charts: one style per method in every panel, NO_COLOR markers, smoothing, log y, cursor."""

from __future__ import annotations

import pytest

from rcekd_tui.widgets.charts import ChartOptions, LineChart, ema, legend, value_at
from rcekd_tui.widgets.palette import MARKERS, method_of, style_of, styles_for

METHODS = ["teacher", "scratch", "kd", "rcekd", "rrd", "dcd", "cd", "unkd", "hetcomp", "de"]


def test_a_label_takes_its_methods_style_whatever_the_run_or_seed():
    assert method_of("run-a:kd/s1") == method_of("kd/s0") == method_of("kd") == "kd"
    assert style_of("run-a:kd/s1", plain=False) == style_of("kd", plain=False)
    assert len({style_of(m, plain=False).color for m in METHODS if m != "teacher"}) == len(METHODS) - 1


def test_no_color_gives_every_method_its_own_marker():
    marks = [style_of(m, plain=True).marker for m in METHODS]
    assert len(set(marks)) == len(marks) and "braille" not in marks
    assert all(style_of(m, plain=False).marker == "braille" for m in METHODS)
    assert style_of("newmethod", plain=True).marker not in MARKERS.values()  # a spare, not another's


def test_the_same_method_in_two_compared_runs_gets_two_styles():
    styles = styles_for(["a:kd", "b:kd", "b:rcekd"], plain=True)
    assert styles["a:kd"] == style_of("kd", plain=True) and styles["b:rcekd"] == style_of("rcekd", plain=True)
    assert styles["b:kd"].color != styles["a:kd"].color and styles["b:kd"].marker != styles["a:kd"].marker


def test_ema_is_debiased_and_keeps_gaps():
    assert ema([1.0, None, 3.0], 0.5) == [pytest.approx(1.0), None, pytest.approx((0.25 + 1.5) / 0.75)]
    assert ema([2.0, 2.0, 2.0], 0.9) == [pytest.approx(2.0)] * 3  # a constant stays itself


def test_value_at_reads_the_logged_point_at_or_before_x():
    assert value_at([1, 2, 4], [0.1, None, 0.4], 3) == 0.1 and value_at([1, 2, 4], [0.1, 0.2, 0.4], 4) == 0.4
    assert value_at([2], [0.5], 1) is None


def test_legend_names_each_series_once_with_the_reference_last():
    text = legend(["kd", "rcekd", "kd"], "teacher").plain
    assert text.count("kd") == 2 and text.index("kd") < text.index("rcekd") < text.index("teacher (reference)")


def test_log_y_drops_points_at_or_below_zero_and_smoothing_applies_to_every_line():
    chart = LineChart("t")
    chart.lines = [("kd", [1, 2, 3], [0.0, 1.0, 2.0]), ("rcekd", [1, 2], [None, 4.0])]
    chart.options = ChartOptions(log_y=True)
    assert chart.drawn() == [("kd", [2, 3], [1.0, 2.0]), ("rcekd", [2], [4.0])]
    chart.options = ChartOptions(smooth=0.5)
    assert chart.drawn()[0][2] == pytest.approx([0.0, 0.5 / 0.75, 1.25 / 0.875])


async def test_run_screen_styles_match_across_panels_and_the_view_keys_apply_to_all(write_run, monkeypatch):
    from rcekd_tui.app import RcekdApp
    from rcekd_tui.screens.run import RunScreen
    from rcekd_tui.widgets.charts import Legend

    monkeypatch.setenv("NO_COLOR", "1")
    run = write_run("r", methods=("scratch", "rcekd"), epochs=4)
    app = RcekdApp(runs_root=run.root.parent, prewarm=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = RunScreen(run.root)
        await app.push_screen(screen)
        for _ in range(60):
            await pilot.pause(0.05)
            if screen.query_one("#chart-overlap", LineChart).lines:
                break
        charts = list(screen.query(LineChart))
        styles = {}
        for chart in charts:
            for label, _, _ in chart.lines:
                styles.setdefault(label, set()).add(chart.style(label))
        assert set(styles) >= {"rcekd", "scratch"} and all(len(s) == 1 for s in styles.values())
        assert len({next(iter(s)).marker for s in styles.values()}) == len(styles)  # NO_COLOR: distinct marks
        legend_text = str(screen.query_one(Legend).render())
        assert "rcekd" in legend_text and "scratch" in legend_text
        for key in ("l", "m", "right_square_bracket"):
            await pilot.press(key)
        await pilot.pause()
        assert all(c.options.log_y and c.options.smooth == 0.6 and c.options.cursor == 1.0 for c in charts)
        ndcg = screen.query_one("#chart-ndcg", LineChart)
        assert ndcg.border_subtitle.startswith("epoch 1:") and "rcekd 0.01" in ndcg.border_subtitle
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert ndcg.options.cursor == 2.0 and "rcekd 0.02" in ndcg.border_subtitle
        await pilot.press("x")
        await pilot.pause()
        assert ndcg.options.x_label == "minutes" and ndcg.options.cursor is None
        assert ndcg.lines[0][1] == pytest.approx([0.5 / 60 * n for n in range(1, 5)])  # 0.5 s per epoch
