"""Small line charts as server-rendered SVG: points in, coordinates and a path out. No Django, no JS.

The page draws the SVG from a `LineChart` with presentation attributes and classes only (the CSP forbids
inline styles), and shows the same points in a table beside it for screen readers and for reading exact values.
"""

from dataclasses import dataclass
from decimal import Decimal

WIDTH = 320
HEIGHT = 160
# Room for the y labels on the left and the x labels below, inside the viewBox.
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 10, 22


@dataclass(frozen=True)
class Tick:
    value: float
    at: float  # the SVG coordinate along its axis
    label: str
    anchor: str = "middle"  # SVG text-anchor: the outermost x labels lean inwards so that they are not cut off


@dataclass(frozen=True)
class LineChart:
    path: str  # the SVG path's `d`: M x y L x y …
    dots: list[tuple[float, float]]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    marker_x: float | None  # Day 0's vertical line, when it falls inside the x range
    threshold_y: float | None  # a reference line (the aplasia or IgG threshold)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT
    top: int = TOP


def _nice_top(value: float) -> float:
    """The next round number at or above `value` (1, 2, 5 × a power of ten), so the axis reads easily."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _label(value: float) -> str:
    return f"{value:g}"


def _day_label(value: float) -> str:
    return "Day 0" if value == 0 else f"{value:+g}".replace("-", "−")


def line_chart(
    points: list[tuple[float, float | Decimal]],
    *,
    marker_x: float | None = 0,
    threshold: float | Decimal | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> LineChart | None:
    """Scale `points` (x: days from Day 0, y: the value) into the chart's box; None when there is nothing to draw.
    The x range always includes the marker (Day 0) so that it is drawn; y starts at 0 (a count, a level)."""
    if not points:
        return None
    ordered = sorted((float(x), float(y)) for x, y in points)
    xs = [x for x, _ in ordered] + ([float(marker_x)] if marker_x is not None else [])
    x_min, x_max = min(xs), max(xs)
    if x_max == x_min:
        x_max = x_min + 1
    top_value = _nice_top(max([y for _, y in ordered] + ([float(threshold)] if threshold is not None else [])))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def sx(x: float) -> float:
        return round(LEFT + (x - x_min) / (x_max - x_min) * plot_w, 1)

    def sy(y: float) -> float:
        return round(TOP + plot_h - (y / top_value) * plot_h, 1)

    dots = [(sx(x), sy(y)) for x, y in ordered]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:g} {y:g}" for i, (x, y) in enumerate(dots))
    y_ticks = [Tick(v, sy(v), _label(v)) for v in (0, top_value / 2, top_value)]
    x_values = sorted({x_min, x_max, *([float(marker_x)] if marker_x is not None else [])})
    x_ticks = [Tick(v, sx(v), _day_label(v), "start" if v == x_min else "end" if v == x_max else "middle") for v in x_values]
    return LineChart(
        path=path,
        dots=dots,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        marker_x=sx(float(marker_x)) if marker_x is not None else None,
        threshold_y=sy(float(threshold)) if threshold is not None else None,
        width=width,
        height=height,
        bottom=height - BOTTOM,
        right=width - RIGHT,
    )
