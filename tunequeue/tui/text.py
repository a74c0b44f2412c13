"""English and Chinese strings of the app shell, queue, dashboard and GPUs screens.

`tr(key, lang)` looks a key up here first and then in `tunequeue.core.i18n` (shared labels), so
every label of these screens exists in both languages. Screens that mix in `TranslatedBindings`
show their key bindings (the footer) in the app's language; `localize_bindings` redraws them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tunequeue.core.i18n import lookup

STRINGS: dict[str, dict[str, str]] = {
    # key bindings (footer), by action name
    "bind.switch_language": {"en": "中文", "zh": "EN"},
    "bind.quit": {"en": "Quit", "zh": "退出"},
    "bind.new_task": {"en": "New", "zh": "新建"},
    "bind.open_job": {"en": "Open", "zh": "打开"},
    "bind.cancel_job": {"en": "Cancel", "zh": "取消"},
    "bind.retry_job": {"en": "Retry", "zh": "重试"},
    "bind.delete_job": {"en": "Delete", "zh": "删除"},
    "bind.toggle_hold": {"en": "Hold", "zh": "暂缓"},
    "bind.priority_up": {"en": "Prio+", "zh": "优先+"},
    "bind.priority_down": {"en": "Prio-", "zh": "优先-"},
    "bind.presets": {"en": "Presets", "zh": "预设"},
    "bind.gpus": {"en": "GPUs", "zh": "GPU"},
    "bind.edit_job": {"en": "Edit", "zh": "编辑"},
    "bind.clone_job": {"en": "Clone", "zh": "克隆"},
    "bind.cycle_filter": {"en": "Filter", "zh": "筛选"},
    "bind.start_runner": {"en": "Start runner", "zh": "启动调度器"},
    "bind.back": {"en": "Back", "zh": "返回"},
    "bind.job_info": {"en": "Task", "zh": "任务"},
    "bind.show_help": {"en": "Keys", "zh": "按键"},
    "bind.chat": {"en": "Chat", "zh": "对话"},
    "bind.clear_chat": {"en": "Clear", "zh": "清空"},
    # queue screen
    "queue.title": {"en": "Queue", "zh": "队列"},
    "queue.col.id": {"en": "ID", "zh": "ID"},
    "queue.col.name": {"en": "Name", "zh": "名称"},
    "queue.col.state": {"en": "State", "zh": "状态"},
    "queue.col.gpus": {"en": "GPUs", "zh": "GPU"},
    "queue.col.progress": {"en": "Prog", "zh": "进度"},
    "queue.col.loss": {"en": "Loss", "zh": "损失"},
    "queue.col.time": {"en": "Elapsed/ETA", "zh": "已用/剩余"},
    "queue.runner_running": {"en": "Runner: running (pid {pid})", "zh": "调度器：运行中（pid {pid}）"},
    "queue.runner_stopped": {
        "en": "Runner: stopped (press s to start)",
        "zh": "调度器：已停止（按 s 启动）",
    },
    "queue.runner_starting": {"en": "Starting the runner…", "zh": "正在启动调度器…"},
    "queue.runner_started": {"en": "Runner started.", "zh": "调度器已启动。"},
    "queue.runner_already": {"en": "The runner is already running.", "zh": "调度器已在运行。"},
    "queue.filter": {"en": "Filter: {name} (f)", "zh": "筛选：{name}（f）"},
    "queue.filter.all": {"en": "all", "zh": "全部"},
    "queue.filter.active": {"en": "active", "zh": "进行中"},
    "queue.filter.waiting": {"en": "waiting", "zh": "等待中"},
    "queue.filter.finished": {"en": "finished", "zh": "已结束"},
    "queue.filter.failed": {"en": "failed", "zh": "失败"},
    "queue.empty": {
        "en": "No jobs yet. Press n to create a task, or run `tunequeue submit FILE`.",
        "zh": "还没有任务。按 n 新建任务，或运行 `tunequeue submit FILE`。",
    },
    "queue.empty_filter": {"en": "No {name} jobs.", "zh": "没有{name}的任务。"},
    "queue.no_selection": {"en": "Select a job first.", "zh": "请先选择一个任务。"},
    "queue.detail": {"en": "Job {id} {name}: {state}", "zh": "任务 {id} {name}：{state}"},
    "queue.waiting_because": {"en": "waiting: {reason}", "zh": "等待原因：{reason}"},
    "queue.failed_because": {"en": "exit {code}: {reason}", "zh": "退出码 {code}：{reason}"},
    "queue.confirm_cancel": {"en": "Cancel job {id} ({name})?", "zh": "取消任务 {id}（{name}）？"},
    "queue.confirm_delete": {
        "en": "Delete job {id} ({name}) and its run directory? This cannot be undone.",
        "zh": "删除任务 {id}（{name}）及其运行目录？此操作不可撤销。",
    },
    "queue.cancelled": {"en": "Job {id} cancel requested.", "zh": "已请求取消任务 {id}。"},
    "queue.deleted": {"en": "Job {id} deleted.", "zh": "任务 {id} 已删除。"},
    "queue.retried": {
        "en": "Job {id} queued again (attempt {attempt}).",
        "zh": "任务 {id} 已重新排队（第 {attempt} 次）。",
    },
    "queue.held": {"en": "Job {id} held.", "zh": "任务 {id} 已暂缓。"},
    "queue.released": {"en": "Job {id} released.", "zh": "任务 {id} 已放行。"},
    "queue.priority": {"en": "Job {id} priority {priority}.", "zh": "任务 {id} 优先级 {priority}。"},
    "queue.only_queued_edit": {
        "en": "Only queued or held jobs can be edited; press k to clone this one instead.",
        "zh": "只能编辑排队中或暂缓的任务；按 k 克隆此任务。",
    },
    "queue.not_available": {
        "en": "That screen is not available in this build.",
        "zh": "此版本中没有该界面。",
    },
    "queue.db_error": {"en": "Cannot read the queue: {error}", "zh": "无法读取队列：{error}"},
    # GPU summary line
    "gpus.summary": {
        "en": "GPUs: {count} ({busy} busy){simulated}",
        "zh": "GPU：{count} 块（{busy} 块占用）{simulated}",
    },
    "gpus.simulated_tag": {"en": " [simulated]", "zh": "【模拟】"},
    "gpus.none": {"en": "GPUs: none ({error})", "zh": "GPU：无（{error}）"},
    "gpus.none_plain": {"en": "GPUs: none, jobs run on CPU", "zh": "GPU：无，任务在 CPU 上运行"},
    # job states
    "state.queued": {"en": "queued", "zh": "排队中"},
    "state.held": {"en": "held", "zh": "暂缓"},
    "state.starting": {"en": "starting", "zh": "启动中"},
    "state.running": {"en": "running", "zh": "运行中"},
    "state.cancelling": {"en": "cancelling", "zh": "取消中"},
    "state.succeeded": {"en": "succeeded", "zh": "成功"},
    "state.failed": {"en": "failed", "zh": "失败"},
    "state.cancelled": {"en": "cancelled", "zh": "已取消"},
    # dashboard
    "dash.title": {"en": "Job {id} · {name}", "zh": "任务 {id} · {name}"},
    "dash.job": {"en": "Job {id} {name}", "zh": "任务 {id} {name}"},
    "dash.attempt": {"en": "attempt {attempt}", "zh": "第 {attempt} 次"},
    "dash.gpus": {"en": "GPU {list}", "zh": "GPU {list}"},
    "dash.cpu": {"en": "CPU", "zh": "CPU"},
    "dash.no_gpu_yet": {"en": "no GPU yet", "zh": "尚未分配 GPU"},
    "dash.step": {"en": "step {step}/{total}", "zh": "步数 {step}/{total}"},
    "dash.stats": {
        "en": "loss {loss}  eval {eval_loss}  lr {lr}  {throughput}  epoch {epoch}",
        "zh": "损失 {loss}  验证 {eval_loss}  学习率 {lr}  {throughput}  轮次 {epoch}",
    },
    "dash.throughput": {"en": "{value} tok/s", "zh": "{value} tok/s"},
    "dash.eta": {"en": "elapsed {elapsed} · ETA {remaining}", "zh": "已用 {elapsed} · 剩余 {remaining}"},
    "dash.elapsed": {"en": "elapsed {elapsed}", "zh": "已用 {elapsed}"},
    "dash.no_metrics": {
        "en": "No metrics yet: the first numbers appear after the first logging step.",
        "zh": "暂无指标：第一个日志步之后才会显示数据。",
    },
    "dash.waiting": {"en": "Waiting to start: {reason}", "zh": "等待启动：{reason}"},
    "dash.failed": {"en": "Failed with exit code {code}: {reason}", "zh": "失败，退出码 {code}：{reason}"},
    "dash.failed_signal": {
        "en": "Killed by signal {signal}: {reason}",
        "zh": "被信号 {signal} 终止：{reason}",
    },
    "dash.cancelled": {"en": "Cancelled: {reason}", "zh": "已取消：{reason}"},
    "dash.succeeded": {"en": "Finished. Result: {path}", "zh": "已完成。结果：{path}"},
    "dash.run_dir": {"en": "Run dir: {path}", "zh": "运行目录：{path}"},
    "dash.chart_raw": {"en": "loss", "zh": "损失"},
    "dash.chart_smooth": {"en": "smoothed", "zh": "平滑"},
    "dash.chart_eval": {"en": "eval", "zh": "验证"},
    "dash.chart_step": {"en": "step", "zh": "步数"},
    "dash.log_title": {"en": "train.log", "zh": "train.log"},
    "dash.no_log": {"en": "(no train.log yet)", "zh": "（尚无 train.log）"},
    "dash.no_job": {"en": "Job {id} no longer exists.", "zh": "任务 {id} 已不存在。"},
    "dash.gpu_none": {"en": "No GPU samples yet.", "zh": "暂无 GPU 采样。"},
    # GPU panes and GPUs screen
    "gpu.pane_title": {"en": "GPU {index} {name}", "zh": "GPU {index} {name}"},
    "gpu.util": {"en": "util {value}%", "zh": "利用率 {value}%"},
    "gpu.mem": {"en": "mem {used}/{total} GiB", "zh": "显存 {used}/{total} GiB"},
    "gpu.temp_power": {"en": "{temp}°C {power} W", "zh": "{temp}°C {power} W"},
    "gpus.title": {"en": "GPUs", "zh": "GPU"},
    "gpus.col.index": {"en": "#", "zh": "#"},
    "gpus.col.name": {"en": "Name", "zh": "型号"},
    "gpus.col.util": {"en": "Util", "zh": "利用率"},
    "gpus.col.mem": {"en": "Memory GiB", "zh": "显存 GiB"},
    "gpus.col.temp": {"en": "Temp", "zh": "温度"},
    "gpus.col.power": {"en": "Power", "zh": "功率"},
    "gpus.col.used_by": {"en": "Used by", "zh": "使用者"},
    "gpus.free": {"en": "free", "zh": "空闲"},
    "gpus.job": {"en": "job {id} {name}", "zh": "任务 {id} {name}"},
    "gpus.foreign": {"en": "pid {pid} {name}", "zh": "进程 {pid} {name}"},
    "gpus.heading": {"en": "{count} GPUs{simulated}", "zh": "共 {count} 块 GPU{simulated}"},
    "gpus.history": {"en": "GPU {index} utilisation, recent", "zh": "GPU {index} 近期利用率"},
    # job task screen
    "job.title": {"en": "Job {id} task", "zh": "任务 {id} 配置"},
    "job.events": {"en": "History", "zh": "历史"},
    # chat screen
    "chat.title": {"en": "Job {id} · chat", "zh": "任务 {id} · 对话"},
    "chat.placeholder": {
        "en": "Type a message, Enter sends (ctrl+l clears, Esc goes back)",
        "zh": "输入消息，回车发送（ctrl+l 清空，Esc 返回）",
    },
    "chat.loading": {"en": "loading model…", "zh": "正在加载模型…"},
    "chat.ready": {"en": "Model loaded from {path}.", "zh": "模型已从 {path} 加载。"},
    "chat.load_failed": {"en": "Cannot load the model: {error}", "zh": "无法加载模型：{error}"},
    "chat.reply_failed": {"en": "The reply failed: {error}", "zh": "生成回复失败：{error}"},
    "chat.still_loading": {"en": "The model is still loading.", "zh": "模型仍在加载。"},
    "chat.busy": {"en": "Wait for the reply to finish.", "zh": "请等待当前回复结束。"},
    "chat.cleared": {"en": "History cleared.", "zh": "历史已清空。"},
    "chat.user": {"en": "You: ", "zh": "你："},
    "chat.assistant": {"en": "Assistant: ", "zh": "助手："},
    "chat.empty_reply": {"en": "(empty reply)", "zh": "（空回复）"},
    "chat.no_job": {"en": "The job is not read yet.", "zh": "尚未读取任务。"},
    "chat.not_succeeded": {
        "en": "Chat needs a job that finished successfully.",
        "zh": "只能与成功完成的任务对话。",
    },
    "chat.not_train": {
        "en": "Chat needs a training job; this job did not train a model.",
        "zh": "只能与训练任务对话；此任务没有训练模型。",
    },
    # forms: wizard and preset editor
    "form.discard": {
        "en": "Discard your changes and leave?",
        "zh": "放弃所做的修改并离开？",
    },
    "form.loading": {"en": "Loading…", "zh": "正在加载…"},
    "form.load_failed": {"en": "Cannot read the task: {error}", "zh": "无法读取任务：{error}"},
    "review.checking": {
        "en": "Checking the task and estimating its memory…",
        "zh": "正在检查任务并估算显存…",
    },
    "preset.bad_ref": {
        "en": "Write NAMESPACE/NAME, each 1–63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit.",
        "zh": "请写成 命名空间/名称，各为1–63个小写字母、数字或“-”，且以字母或数字开头和结尾。",
    },
    "preset.exists": {"en": "Preset {ref} already exists.", "zh": "参数组 {ref} 已存在。"},
    "chat.no_output": {
        "en": "This job's result holds no adapter or model to chat with.",
        "zh": "此任务的结果中没有可对话的适配器或模型。",
    },
}


def tr(key: str, lang: str, default: str | None = None, **fmt: Any) -> str:
    """Return the `lang` text of `key` formatted with `fmt`; fall back to core i18n, then `default`."""
    text = lookup(key, lang, STRINGS)
    if text is None:
        text = lookup(key, lang)
    if text is None:
        text = default if default is not None else key
    return text.format(**fmt) if fmt else text


def state_label(state: str, lang: str) -> str:
    """The job state in `lang`."""
    return tr(f"state.{state}", lang, default=state)


class TranslatedBindings:
    """Screen mixin: the footer shows every key binding's description in the app's language.

    The descriptions come from `binding_description` (by default ``bind.<action>`` of this table),
    applied to `active_bindings`, which is what the footer reads; the bindings themselves stay as
    declared.
    """

    def binding_description(self, binding: Any, lang: str) -> str:
        """The footer text of ``binding`` in ``lang``."""
        return tr(f"bind.{binding.action}", lang, binding.description)

    @property
    def active_bindings(self) -> dict[str, Any]:
        """The screen's active bindings with their descriptions in the app's language."""
        from textual.binding import ActiveBinding

        lang = getattr(self.app, "lang", "en")
        describe = self.binding_description
        return {
            key: ActiveBinding(
                active.node,
                dataclasses.replace(active.binding, description=describe(active.binding, lang)),
                active.enabled,
                active.tooltip,
            )
            for key, active in super().active_bindings.items()
        }


def localize_bindings(node: Any, lang: str) -> None:
    """Show the key bindings of a screen or the app in `lang` (the footer re-reads them).

    Screens translate their footer through `TranslatedBindings`; this only asks for a redraw.
    """
    node.refresh_bindings()
