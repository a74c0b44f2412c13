"""Loss chart: training loss (raw and EMA-smoothed) and eval loss against the step, drawn with plotext."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from tunequeue.tui.formatting import ema
from tunequeue.tui.text import tr


class LossChart(PlotextPlot):
    """Plot of `loss` and `eval_loss` from trainer_log rows; keeps the plotted series as attributes."""

    DEFAULT_CSS = """
    LossChart { width: 1fr; height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None, lang: str = "en") -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.lang = lang
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.eval_steps: list[int] = []
        self.eval_losses: list[float] = []

    def on_mount(self) -> None:
        """Draw the (possibly empty) axes at once."""
        super().on_mount()
        self._draw()

    def show_metrics(self, rows: list[dict]) -> None:
        """Replace the plotted series with those in `rows` (trainer_log objects ordered by step)."""
        steps, losses, eval_steps, eval_losses = [], [], [], []
        for row in rows:
            step = row.get("current_steps", row.get("step"))
            if step is None:
                continue
            if row.get("loss") is not None:
                steps.append(int(step))
                losses.append(float(row["loss"]))
            if row.get("eval_loss") is not None:
                eval_steps.append(int(step))
                eval_losses.append(float(row["eval_loss"]))
        if (steps, losses, eval_steps, eval_losses) == (
            self.steps,
            self.losses,
            self.eval_steps,
            self.eval_losses,
        ):
            return
        self.steps, self.losses = steps, losses
        self.smoothed = ema(losses)
        self.eval_steps, self.eval_losses = eval_steps, eval_losses
        self._draw()

    def set_language(self, lang: str) -> None:
        """Redraw titles and legend in `lang`."""
        self.lang = lang
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel(tr("dash.chart_step", self.lang))
        if self.steps:
            plt.plot(
                self.steps, self.losses, label=tr("dash.chart_raw", self.lang), marker="dot", color="gray"
            )
            plt.plot(
                self.steps,
                self.smoothed,
                label=tr("dash.chart_smooth", self.lang),
                marker="braille",
                color="cyan",
            )
        if self.eval_steps:
            plt.scatter(
                self.eval_steps,
                self.eval_losses,
                label=tr("dash.chart_eval", self.lang),
                marker="x",
                color="orange",
            )
        self.refresh()
