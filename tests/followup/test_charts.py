"""The SVG line chart's arithmetic: points in, coordinates and a path out."""

from decimal import Decimal

from followup.charts import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, _nice_top, line_chart


def test_nothing_to_draw():
    assert line_chart([]) is None


def test_points_scale_into_the_box_with_day0_marked():
    chart = line_chart([(-7, 100), (14, 0), (110, 50)], marker_x=0, threshold=1)
    # x from −7 to 110 over the plot width; y from 0 to 100 (a round top) over the plot height.
    assert chart.dots[0] == (LEFT, TOP)
    assert chart.dots[2] == (WIDTH - RIGHT, TOP + (HEIGHT - TOP - BOTTOM) / 2)
    assert chart.dots[1][1] == HEIGHT - BOTTOM
    assert chart.path.startswith(f"M{LEFT} {TOP} L")
    assert chart.path.count("L") == 2
    assert LEFT < chart.marker_x < WIDTH - RIGHT
    assert [(t.label, t.anchor) for t in chart.x_ticks] == [("−7", "start"), ("Day 0", "middle"), ("+110", "end")]
    assert [t.label for t in chart.y_ticks] == ["0", "50", "100"]
    assert chart.threshold_y == round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - 1 / 100), 1)


def test_day0_stays_in_range_when_every_point_is_after_it():
    chart = line_chart([(28, Decimal("6.1")), (90, Decimal("3.9"))], marker_x=0)
    assert chart.marker_x == LEFT
    assert chart.x_ticks[0].label == "Day 0"


def test_a_single_point():
    chart = line_chart([(0, 0)], marker_x=0)
    assert chart.path == f"M{LEFT} {HEIGHT - BOTTOM}"


def test_round_tops():
    assert [_nice_top(v) for v in (0, 0.3, 1, 3.9, 7, 12, 105, 5000)] == [1, 0.5, 1, 5, 10, 20, 200, 5000]
