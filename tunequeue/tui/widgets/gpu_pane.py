"""One pane per GPU: utilisation, memory, temperature and power with sparklines of their recent history."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tunequeue.tui.data import GpuHistory
from tunequeue.tui.formatting import format_gib
from tunequeue.tui.text import tr
from tunequeue.tui.widgets.sparkline import ScaledSparkline

HISTORY_POINTS = 60


class GpuPane(Vertical):
    """Latest stats of one GPU and sparklines of utilisation and memory over the recent samples."""

    DEFAULT_CSS = """
    GpuPane { height: auto; border: round $primary 50%; padding: 0 1; }
    GpuPane .gpu-title { text-style: bold; }
    GpuPane ScaledSparkline { height: 1; margin: 0; }
    """

    def __init__(self, index: int, *, lang: str = "en") -> None:
        super().__init__(id=f"gpu-pane-{index}", classes="gpu-pane")
        self.index = index
        self.lang = lang
        self.history: GpuHistory | None = None

    def compose(self) -> ComposeResult:
        """Title, utilisation + sparkline, memory + sparkline, temperature and power."""
        yield Static("", markup=False, classes="gpu-title")
        yield Static("", markup=False, classes="gpu-util")
        yield ScaledSparkline(100.0, classes="util-history")
        yield Static("", markup=False, classes="gpu-mem")
        yield ScaledSparkline(1.0, classes="mem-history")
        yield Static("", markup=False, classes="gpu-temp")

    def on_mount(self) -> None:
        """Render whatever history arrived before mounting."""
        self._show_stats()

    def show(self, history: GpuHistory) -> None:
        """Show `history` (samples oldest first)."""
        self.history = history
        if self.is_mounted:
            self._show_stats()

    def set_language(self, lang: str) -> None:
        """Re-label in `lang`."""
        self.lang = lang
        self._show_stats()

    def stat_lines(self) -> list[str]:
        """The text lines of the pane (title, utilisation, memory, temperature/power)."""
        lang = self.lang
        history = self.history
        tag = tr("gpus.simulated_tag", lang).strip() if history and history.simulated else ""
        title = f"GPU {self.index} {tag}".rstrip()
        latest = history.latest if history else None
        if latest is None:
            return [title, tr("dash.gpu_none", lang), "", ""]
        util = tr("gpu.util", lang, value=f"{float(latest.get('utilization') or 0):.0f}")
        mem = tr(
            "gpu.mem",
            lang,
            used=format_gib(latest.get("memory_used_mib")),
            total=format_gib(latest.get("memory_total_mib")),
        )
        temp = latest.get("temperature")
        power = latest.get("power_w")
        temp_power = tr(
            "gpu.temp_power",
            lang,
            temp="-" if temp is None else f"{float(temp):.0f}",
            power="-" if power is None else f"{float(power):.0f}",
        )
        return [title, util, mem, temp_power]

    def _show_stats(self) -> None:
        title, util, mem, temp_power = self.stat_lines()
        self.query_one(".gpu-title", Static).update(Text(title))
        self.query_one(".gpu-util", Static).update(util)
        self.query_one(".gpu-mem", Static).update(mem)
        self.query_one(".gpu-temp", Static).update(temp_power)
        samples = self.history.samples[-HISTORY_POINTS:] if self.history else []
        self.query_one(".util-history", ScaledSparkline).data = [
            float(row.get("utilization") or 0) for row in samples
        ]
        memory = self.query_one(".mem-history", ScaledSparkline)
        memory.ceiling = float(samples[-1].get("memory_total_mib") or 1.0) if samples else 1.0
        memory.data = [float(row.get("memory_used_mib") or 0) for row in samples]
