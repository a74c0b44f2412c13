"""Loss chart: training loss (raw and EMA-smoothed) and eval loss against the step, drawn with plotext.

The series come ready-made from the dashboard's read worker (`tunequeue.tui.metric_history`): the
raw points of a short run, bucket means of a long one, never more than a few hundred points, so
drawing costs the same for a run of any length; an unchanged series is not drawn again.

The axes carry a few round ticks labelled with at most 3 significant digits. The legend is not drawn
inside the plot (plotext measures characters, not terminal cells, so Chinese labels pushed its border):
`legend()` gives it as one line of text the dashboard shows above the chart.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual_plotext import PlotextPlot

from tunequeue.tui.metric_history import ChartSeries
from tunequeue.tui.text import tr


def tick_label(value: float) -> str:
    """A tick label with at most 3 significant digits (``0.123``, ``1.5``, ``1.2e+03``)."""
    if value == 0:
        return "0"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 times a power of ten) covering low..high."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks or [low]


class LossChart(PlotextPlot):
    """Plot of loss, its EMA and eval loss; `series` is what it plots now."""

    DEFAULT_CSS = """
    LossChart { width: 1fr; height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None, lang: str = "en") -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.lang = lang
        self.series = ChartSeries()

    def on_mount(self) -> None:
        """Draw the (possibly empty) axes at once."""
        super().on_mount()
        self._draw()

    def show_series(self, series: ChartSeries) -> None:
        """Plot `series` (from `tunequeue.tui.metric_history`); nothing is redrawn when it is unchanged."""
        if series is self.series or series == self.series:
            return
        self.series = series
        self._draw()

    def set_language(self, lang: str) -> None:
        """Redraw titles and legend in `lang`."""
        self.lang = lang
        self._draw()

    def legend(self) -> Text:
        """The chart's legend as one line: which mark is which series, and the x axis."""
        text = Text()
        text.append("· ", style="bright_black")
        text.append(tr("dash.chart_raw", self.lang))
        text.append("  ⣿ ", style="cyan")
        text.append(tr("dash.chart_smooth", self.lang))
        if self.series.eval_steps:
            text.append("  x ", style="dark_orange")
            text.append(tr("dash.chart_eval", self.lang))
        text.append("  → " + tr("dash.chart_step", self.lang), style="dim")
        return text

    def _draw(self) -> None:
        plt, series = self.plt, self.series
        plt.clear_data()
        plt.clear_figure()
        if series.steps:
            plt.plot(series.steps, series.losses, marker="dot", color="gray")
            plt.plot(series.steps, series.smoothed, marker="braille", color="cyan")
        if series.eval_steps:
            plt.scatter(series.eval_steps, series.eval_losses, marker="x", color="orange")
        values = series.losses + series.smoothed + series.eval_losses
        if values:
            yticks = nice_ticks(min(values), max(values))
            plt.yticks(yticks, [tick_label(tick) for tick in yticks])
            steps = series.steps + series.eval_steps
            xticks = [tick for tick in nice_ticks(min(steps), max(steps)) if float(tick).is_integer()]
            plt.xticks(xticks, [str(int(tick)) for tick in xticks])
        self.refresh()
