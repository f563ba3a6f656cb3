"""Chart geometry for the HTML reports: Python computes every coordinate, the
templates (reports/_charts.html) only draw. Inline SVG: no script, no network.

Text is measured here too, so no label is cut off at the chart's edge: a label
column is as wide as its longest label ("Rest of Central & Eastern Europe"), and an
axis label near an end is anchored inside the chart. The widths are estimates from
the font's average character width (reports/style.css: DejaVu Sans, 12 px in charts,
11 px on axes), generous rather than exact; tests/test_report.py checks the drawn text
boxes in Chromium.
"""

from __future__ import annotations

from dataclasses import dataclass

BAR_HEIGHT = 22
BAR_GAP = 6
LABEL_WIDTH = 190           # at least; wider when a label needs it
VALUE_WIDTH = 110           # at least, right of the longest bar
LABEL_PAD = 8               # between a label and its bar
CHART_FONT_PX = 12
AXIS_FONT_PX = 11
# DejaVu Sans: most characters are 0.55-0.7 em wide (capitals and digits at the top).
CHAR_EM = 0.66
CHART_WIDTH = 720
COLUMN_CHART_HEIGHT = 220
AXIS_MARGIN = 28


@dataclass(frozen=True)
class Bar:
    label: str
    value_text: str
    y: float
    width: float


def text_width(text: str, font_px: float = CHART_FONT_PX) -> float:
    """An upper estimate of the drawn width of ``text`` in pixels."""
    return len(text) * font_px * CHAR_EM


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int
    bar_area: int
    bar_height: int


def bar_chart(title: str, rows: list[tuple[str, float, str]]) -> BarChart:
    """Horizontal bars: (label, value, value as shown)."""
    top = max((value for _, value, _ in rows), default=0) or 1
    label_width = round(max([LABEL_WIDTH] + [text_width(label) + LABEL_PAD * 2 for label, _, _ in rows]))
    value_width = round(max([VALUE_WIDTH] + [text_width(shown) + LABEL_PAD * 2 for _, _, shown in rows]))
    area = CHART_WIDTH - label_width - value_width
    bars = tuple(
        Bar(label=label, value_text=shown, y=index * (BAR_HEIGHT + BAR_GAP),
            width=round(max(value, 0) / top * area, 1))
        for index, (label, value, shown) in enumerate(rows)
    )
    height = max(len(rows), 1) * (BAR_HEIGHT + BAR_GAP)
    return BarChart(title=title, bars=bars, width=CHART_WIDTH, height=height,
                    label_width=label_width, bar_area=area, bar_height=BAR_HEIGHT)


@dataclass(frozen=True)
class Column:
    label: str
    value_text: str
    x: float
    y: float
    height: float
    series: int


@dataclass(frozen=True)
class AxisLabel:
    x: float
    text: str
    anchor: str          # SVG text-anchor: middle, or start / end at the chart's edges


@dataclass(frozen=True)
class ColumnChart:
    title: str
    columns: tuple[Column, ...]
    series_names: tuple[str, ...]
    x_labels: tuple[AxisLabel, ...]
    max_text: str
    width: int
    height: int
    plot_height: int
    column_width: float


def column_chart(title: str, labels: list[str], series: dict[str, list[float]],
                 fmt: str = "{:,.0f}", every: int = 7) -> ColumnChart:
    """Stacked columns, one per label (e.g. a day), one colour per series."""
    names = tuple(series)
    totals = [sum(series[name][i] for name in names) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    plot_height = COLUMN_CHART_HEIGHT - AXIS_MARGIN
    slot = (CHART_WIDTH - AXIS_MARGIN) / max(len(labels), 1)
    width = max(slot * 0.8, 1.0)
    columns = []
    for i, label in enumerate(labels):
        base = plot_height
        for s, name in enumerate(names):
            value = series[name][i]
            height = round(max(value, 0) / top * (plot_height - 10), 1)
            base -= height
            columns.append(Column(label=f"{label} {name}", value_text=fmt.format(value),
                                  x=round(AXIS_MARGIN + i * slot, 1), y=round(base, 1), height=height, series=s))
    x_labels = tuple(_axis_label(AXIS_MARGIN + i * slot + width / 2, label)
                     for i, label in enumerate(labels) if i % every == 0)
    return ColumnChart(title=title, columns=tuple(columns), series_names=names, x_labels=x_labels,
                       max_text=fmt.format(top), width=CHART_WIDTH, height=COLUMN_CHART_HEIGHT,
                       plot_height=plot_height, column_width=round(width, 1))


def _axis_label(centre: float, text: str) -> AxisLabel:
    """A label under a column, centred on it unless that would cross an edge of the chart."""
    half = text_width(text, AXIS_FONT_PX) / 2
    if centre + half > CHART_WIDTH:
        return AxisLabel(x=CHART_WIDTH, text=text, anchor="end")
    if centre - half < 0:
        return AxisLabel(x=0, text=text, anchor="start")
    return AxisLabel(x=round(centre, 1), text=text, anchor="middle")
