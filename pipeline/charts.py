"""Chart geometry for the HTML reports: Python computes every coordinate, the
templates (reports/_charts.html) only draw. Inline SVG: no script, no network."""

from __future__ import annotations

from dataclasses import dataclass

BAR_HEIGHT = 22
BAR_GAP = 6
LABEL_WIDTH = 190
VALUE_WIDTH = 110
CHART_WIDTH = 720
COLUMN_CHART_HEIGHT = 220
AXIS_MARGIN = 28


@dataclass(frozen=True)
class Bar:
    label: str
    value_text: str
    y: float
    width: float


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
    area = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = tuple(
        Bar(label=label, value_text=shown, y=index * (BAR_HEIGHT + BAR_GAP),
            width=round(max(value, 0) / top * area, 1))
        for index, (label, value, shown) in enumerate(rows)
    )
    height = max(len(rows), 1) * (BAR_HEIGHT + BAR_GAP)
    return BarChart(title=title, bars=bars, width=CHART_WIDTH, height=height,
                    label_width=LABEL_WIDTH, bar_area=area, bar_height=BAR_HEIGHT)


@dataclass(frozen=True)
class Column:
    label: str
    value_text: str
    x: float
    y: float
    height: float
    series: int


@dataclass(frozen=True)
class ColumnChart:
    title: str
    columns: tuple[Column, ...]
    series_names: tuple[str, ...]
    x_labels: tuple[tuple[float, str], ...]
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
    x_labels = tuple((round(AXIS_MARGIN + i * slot, 1), label) for i, label in enumerate(labels) if i % every == 0)
    return ColumnChart(title=title, columns=tuple(columns), series_names=names, x_labels=x_labels,
                       max_text=fmt.format(top), width=CHART_WIDTH, height=COLUMN_CHART_HEIGHT,
                       plot_height=plot_height, column_width=round(width, 1))
