"""A one-line sparkline on a fixed scale (0 % is always the lowest bar, 100 % the highest).

Textual's `Sparkline` scales between the smallest and largest value it is given, so an idle GPU
at a steady 0 % would draw full bars. GPU history needs an absolute scale: utilisation against 100,
memory against the card's total. The newest sample is at the right edge, one column per sample.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.widgets import Sparkline

BARS = "▁▂▃▄▅▆▇█"


class ScaledSparkline(Sparkline):
    """Sparkline of the most recent values against `ceiling`, newest at the right."""

    def __init__(self, ceiling: float = 100.0, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__([], id=id, classes=classes)
        self.ceiling = ceiling

    def render(self) -> Text:
        """One bar per value, height proportional to value / ceiling, coloured from min to max colour."""
        width = max(self.size.width, 1)
        values = list(self.data or [])[-width:]
        _, base = self.background_colors
        low: Color = base + (self.min_color or self.get_component_styles("sparkline--min-color").color)
        high: Color = base + (self.max_color or self.get_component_styles("sparkline--max-color").color)
        text = Text(" " * (width - len(values)))
        ceiling = self.ceiling if self.ceiling and self.ceiling > 0 else 1.0
        for value in values:
            ratio = min(max(float(value) / ceiling, 0.0), 1.0)
            bar = BARS[min(len(BARS) - 1, int(ratio * len(BARS)))]
            text.append(bar, Style(color=low.blend(high, ratio).rich_color))
        return text
