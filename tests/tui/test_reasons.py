"""Why a job waits: every reason form the scheduler writes reads as words in both languages."""

from __future__ import annotations

import pytest
from tq_tui_testkit import settle, wait_for_screen

from tunequeue.tui.reasons import WaitReason, parse_reason, sentence, short_text

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("stored", "key", "short_en", "long_zh"),
    [
        ("Dependency (job 4)", "dependency", "after job 4", "等待任务 4 完成"),
        ("Resources (needs 2 GPUs, 1 free)", "gpus", "needs 2 GPU, 1 free", "目前只有 1 块空闲"),
        (
            "Resources (needs 1 GPU with 20 GiB free, 0 with room)",
            "gpus_vram",
            "needs 1×20 GiB, 0 fit",
            "需要 1 块空闲 20 GiB 的 GPU",
        ),
        (
            "Resources (needs 4 GPUs, only 2 usable; GPU 3 in MIG mode)",
            "unusable",
            "needs 4 GPU, 2 usable",
            "只有 2 块可用 (GPU 3 in MIG mode)",
        ),
        ("Resources (CPU job limit of 2 reached)", "cpu_limit", "CPU job limit 2", "已有 2 个 CPU 任务"),
        (
            "Resources (no GPU found and the task sets allow_cpu: false)",
            "no_gpu_cpu",
            "no GPU, CPU not allowed",
            "allow_cpu: false",
        ),
        ("Priority (GPUs reserved for job 7)", "reserved", "GPUs kept for job 7", "任务 7"),
        ("Priority", "priority", "higher priority first", "优先级更高"),
        ("PartitionNodeLimit", "other", "PartitionNodeLimit", "PartitionNodeLimit"),
    ],
)
def test_every_scheduler_reason_reads_as_words(stored, key, short_en, long_zh):
    reason = parse_reason(stored)
    assert reason.key == key
    assert short_text(reason, "en") == short_en
    assert long_zh in sentence(reason, "zh")


def test_a_stopped_runner_comes_first_and_says_what_follows():
    reason = WaitReason("runner_stopped", then=parse_reason("Dependency (job 3)"))
    assert short_text(reason, "en") == "runner stopped (s)"
    assert sentence(reason, "en") == (
        "the runner is not running: press s to start it; then: waiting for job 3 to finish"
    )


async def test_dashboard_keys_list_names_the_log_keys(populated_home, app_factory):
    import io

    from rich.console import Console

    from tunequeue.tui.screens.dashboard import DashboardScreen
    from tunequeue.tui.screens.help import HelpScreen

    app = app_factory(open_job=populated_home.running)
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        help_screen = await wait_for_screen(pilot, HelpScreen)
        console = Console(width=100, file=io.StringIO(), color_system=None)
        console.print(help_screen.query_one("#help-keys").content)
        text = console.file.getvalue()
        assert text.index("Log") < text.index("Wrap") < text.index("All lines") < text.index("Moving around")
        await pilot.press("escape")
        await wait_for_screen(pilot, DashboardScreen)
