"""The SVG line chart: what it draws and what it leaves out."""

import math
import re

from vaelab.app.charts import line_chart


def polyline_points(svg: str) -> list[list[tuple[float, float]]]:
    return [[tuple(map(float, p.split(","))) for p in m.split()] for m in re.findall(r'points="([^"]+)"', svg)]


def test_one_line_per_series_with_its_last_value_in_the_legend():
    svg = line_chart([("train", [1, 2, 3], [5.0, 4.0, 3.5]), ("validation", [1, 2, 3], [5.5, 4.5, 4.25])],
                     "epoch", "loss")
    lines = polyline_points(svg)
    assert len(lines) == 2 and all(len(line) == 3 for line in lines)
    assert "train 3.5" in svg and "validation 4.25" in svg
    # lower values are drawn lower on the page (larger y), and x grows left to right
    (x1, y1), (x3, y3) = lines[0][0], lines[0][2]
    assert x3 > x1 and y3 > y1


def test_non_finite_values_are_skipped_and_an_empty_chart_says_so():
    svg = line_chart([("loss", [1, 2, 3, 4], [2.0, math.nan, math.inf, 1.0])], "step", "loss")
    assert [len(line) for line in polyline_points(svg)] == [2]
    empty = line_chart([("loss", [1], [math.nan])], "step", "loss", empty="Nothing yet.")
    assert "Nothing yet." in empty and "<svg" not in empty


def test_log_scale_drops_values_it_cannot_draw_and_labels_powers_of_ten():
    svg = line_chart([("kl", [1, 2, 3], [0.0, 0.1, 10.0])], "step", "kl", logy=True)
    assert [len(line) for line in polyline_points(svg)] == [2]
    assert ">0.1<" in svg and ">10<" in svg


def test_a_marker_sits_at_its_x_and_labels_are_escaped():
    svg = line_chart([("a<b", [0, 10], [1.0, 2.0])], "x", "y", marker=5, marker_label="epoch 5")
    assert "a&lt;b" in svg and "epoch 5" in svg
    [line] = polyline_points(svg)
    marker_x = float(re.search(r'<line x1="([\d.]+)"', svg).group(1))
    assert abs(marker_x - (line[0][0] + line[1][0]) / 2) < 0.2


def test_a_log_x_axis_spaces_decades_equally_and_a_reference_line_is_drawn():
    svg = line_chart([("relaxed", [0.1, 1, 10], [3.0, 2.0, 4.0])], "τ", "loss", logx=True, hline=("exact", 2.5),
                     marker=1, marker_label="τ = 1", last_values=False)
    [line] = polyline_points(svg)
    assert abs((line[1][0] - line[0][0]) - (line[2][0] - line[1][0])) < 0.2  # 0.1→1 as wide as 1→10
    marker_x = float(re.search(r'<line x1="([\d.]+)" x2="[\d.]+" y1="\d+"', svg).group(1))
    assert abs(marker_x - line[1][0]) < 0.2
    assert 'stroke-dasharray="5 3"' in svg and "exact 2.5" in svg and "relaxed 4" not in svg


def test_the_legend_quotes_each_series_at_the_marked_x_not_at_its_end():
    """A chart with a marked level names the value there (where the reader looks), not the value
    at the highest level."""
    from vaelab.app.charts import line_chart

    svg = line_chart([("error", [0.0, 0.5, 0.9], [0.01, 0.03, 0.09])], "noise level", "error", marker=0.25,
                     marker_label="level 0.25")
    assert "● error 0.02 at level 0.25" in svg and "0.09" not in svg.split("</text>")[0]
    plain = line_chart([("error", [0.0, 0.5, 0.9], [0.01, 0.03, 0.09])], "noise level", "error")
    assert "● error 0.09" in plain  # no marker: the last value
