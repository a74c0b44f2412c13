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
    "bind.cycle_sort": {"en": "Sort", "zh": "排序"},
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
    "bind.app.show_help": {"en": "Keys", "zh": "按键"},
    "bind.chat": {"en": "Chat", "zh": "对话"},
    "bind.clear_chat": {"en": "Clear", "zh": "清空"},
    "bind.pick": {"en": "Pick", "zh": "选择"},
    # pickers (model, dataset and template fields; F2 or ctrl+o)
    "picker.title.model": {
        "en": "Pick a model (bundled, model_roots, Hugging Face cache)",
        "zh": "选择模型（内置、model_roots、Hugging Face 缓存）",
    },
    "picker.title.dataset": {
        "en": "Pick a dataset (Enter adds it, or removes it when ticked)",
        "zh": "选择数据集（回车添加；已勾选的则移除）",
    },
    "picker.title.template": {"en": "Pick a chat template", "zh": "选择对话模板"},
    "picker.filter": {
        "en": "Type to filter · ↑↓ move · Enter picks · Esc cancels",
        "zh": "输入以筛选 · ↑↓ 移动 · 回车选择 · Esc 取消",
    },
    "picker.loading": {"en": "Reading…", "zh": "正在读取…"},
    "picker.count": {"en": "{shown} of {total}", "zh": "{shown} / {total}"},
    "picker.no_match": {
        "en": "Nothing matches; 0 of {total}. You can still type the value into the field.",
        "zh": "没有匹配项（0 / {total}）。仍可直接在字段中输入。",
    },
    "picker.params": {"en": "{count} params", "zh": "参数 {count}"},
    "picker.template": {"en": "template {name}", "zh": "模板 {name}"},
    "picker.rows": {"en": "{rows} rows", "zh": "{rows} 行"},
    "picker.source.bundled": {"en": "bundled", "zh": "内置"},
    "picker.source.root": {"en": "model root", "zh": "模型目录"},
    "picker.source.hub": {"en": "Hugging Face cache", "zh": "Hugging Face 缓存"},
    "picker.suggested": {"en": "suggested for this model", "zh": "推荐用于此模型"},
    "picker.template_auto": {"en": "the tokenizer's own chat template", "zh": "使用分词器自带的对话模板"},
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
    "queue.col.priority": {"en": "Pri", "zh": "优先"},
    "queue.col.reason": {"en": "Why waiting", "zh": "等待原因"},
    "queue.col.submitted": {"en": "Submitted", "zh": "提交于"},
    "queue.col.attempt": {"en": "Try", "zh": "次数"},
    "queue.need_gpus": {"en": "need {count}", "zh": "需{count}"},
    "queue.ago": {"en": "{age} ago", "zh": "{age} 前"},
    # why a job waits (tunequeue.tui.reasons): a few words for the table, a sentence for details
    "reason.short.held": {"en": "held (h releases)", "zh": "暂缓（h 放行）"},
    "reason.short.runner_stopped": {"en": "runner stopped (s)", "zh": "调度器未运行（s）"},
    "reason.short.starts": {"en": "starts next tick", "zh": "即将启动"},
    "reason.short.dependency": {"en": "after job {job}", "zh": "等待任务 {job}"},
    "reason.short.gpus": {"en": "needs {need} GPU, {free} free", "zh": "需 {need} 块 GPU，空闲 {free}"},
    "reason.short.gpus_vram": {
        "en": "needs {need}×{gib} GiB, {free} fit",
        "zh": "需 {need}×{gib} GiB，可用 {free}",
    },
    "reason.short.unusable": {
        "en": "needs {need} GPU, {usable} usable",
        "zh": "需 {need} 块 GPU，仅 {usable} 块可用",
    },
    "reason.short.cpu_limit": {"en": "CPU job limit {limit}", "zh": "CPU 任务上限 {limit}"},
    "reason.short.no_gpu_cpu": {"en": "no GPU, CPU not allowed", "zh": "无 GPU，不允许 CPU"},
    "reason.short.reserved": {"en": "GPUs kept for job {job}", "zh": "GPU 留给任务 {job}"},
    "reason.short.priority": {"en": "higher priority first", "zh": "高优先级先行"},
    "reason.long.held": {"en": "held: press h to release it", "zh": "已暂缓：按 h 放行"},
    "reason.long.runner_stopped": {
        "en": "the runner is not running: press s to start it",
        "zh": "调度器未运行：按 s 启动",
    },
    "reason.long.starts": {
        "en": "it starts at the runner's next look at the queue",
        "zh": "调度器下次检查队列时启动",
    },
    "reason.long.dependency": {"en": "waiting for job {job} to finish", "zh": "等待任务 {job} 完成"},
    "reason.long.gpus": {
        "en": "needs {need} GPU(s) and only {free} is free",
        "zh": "需要 {need} 块 GPU，目前只有 {free} 块空闲",
    },
    "reason.long.gpus_vram": {
        "en": "needs {need} GPU(s) with {gib} GiB free; {free} have that room now",
        "zh": "需要 {need} 块空闲 {gib} GiB 的 GPU；目前 {free} 块满足",
    },
    "reason.long.unusable": {
        "en": "needs {need} GPU(s) but only {usable} can be used{detail}",
        "zh": "需要 {need} 块 GPU，但只有 {usable} 块可用{detail}",
    },
    "reason.long.cpu_limit": {
        "en": "{limit} CPU jobs already run (max_cpu_jobs)",
        "zh": "已有 {limit} 个 CPU 任务在运行（max_cpu_jobs）",
    },
    "reason.long.no_gpu_cpu": {
        "en": "no GPU found and the task sets allow_cpu: false",
        "zh": "未找到 GPU，且任务设置了 allow_cpu: false",
    },
    "reason.long.reserved": {
        "en": "the free GPUs are kept for job {job}, which has waited longest",
        "zh": "空闲 GPU 留给等待最久的任务 {job}",
    },
    "reason.long.priority": {
        "en": "jobs of higher priority or submitted earlier go first",
        "zh": "优先级更高或更早提交的任务先启动",
    },
    "reason.then": {"en": "; then: {next}", "zh": "；之后：{next}"},
    # help screen (?)
    "help.title": {"en": "Keys", "zh": "按键"},
    "help.close": {"en": "Esc or ? closes this list.", "zh": "按 Esc 或 ? 关闭。"},
    "help.group.jobs": {"en": "Jobs", "zh": "任务"},
    "help.group.views": {"en": "Screens", "zh": "界面"},
    "help.group.log": {"en": "Log", "zh": "日志"},
    "help.group.app": {"en": "App", "zh": "应用"},
    "help.group.screen": {"en": "This screen", "zh": "本界面"},
    "help.group.generic": {"en": "Moving around (Textual)", "zh": "通用按键（Textual）"},
    "bind.toggle_wrap": {"en": "Wrap", "zh": "换行"},
    "bind.toggle_fold": {"en": "All lines", "zh": "全部行"},
    "bind.close": {"en": "Close", "zh": "关闭"},
    # log tail
    "log.repeated": {"en": " (×{count})", "zh": "（×{count}）"},
    "log.folded": {
        "en": "{count} repeated warning lines folded (z shows all)",
        "zh": "已折叠 {count} 行重复警告（按 z 显示全部）",
    },
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
    "gpus.col.gpu": {"en": "GPU", "zh": "GPU"},
    "gpus.col.pid": {"en": "PID", "zh": "PID"},
    "gpus.col.user": {"en": "User", "zh": "用户"},
    "gpus.col.kind": {"en": "Type", "zh": "类型"},
    "gpus.col.mem": {"en": "GPU mem", "zh": "显存"},
    "gpus.col.job": {"en": "Job", "zh": "任务"},
    "gpus.col.command": {"en": "Command", "zh": "命令"},
    "gpus.kind.compute": {"en": "C", "zh": "C"},
    "gpus.kind.graphics": {"en": "G", "zh": "G"},
    "gpus.kind.compute+graphics": {"en": "C+G", "zh": "C+G"},
    "gpus.free": {"en": "free", "zh": "空闲"},
    "gpus.job": {"en": "job {id} {name}", "zh": "任务 {id} {name}"},
    "gpus.foreign_count": {"en": "{count} other process(es)", "zh": "{count} 个其他进程"},
    "gpus.heading": {"en": "{count} GPUs{simulated}", "zh": "共 {count} 块 GPU{simulated}"},
    "gpus.card_title": {"en": "GPU {index} {name}", "zh": "GPU {index} {name}"},
    "gpus.card.util": {"en": "UTL {value}", "zh": "利用 {value}"},
    "gpus.card.mem": {"en": "MEM {used}/{total}G", "zh": "显存 {used}/{total}G"},
    "gpus.card.temp": {"en": "TMP {value}", "zh": "温度 {value}"},
    "gpus.card.power": {"en": "PWR {value}{limit}W", "zh": "功率 {value}{limit}W"},
    "gpus.host": {
        "en": "host CPU {cpu}% of {cores} · RAM {used}/{total} GiB · swap {swap_used}/{swap_total}{load}",
        "zh": "主机 CPU {cpu}%（{cores} 核）· 内存 {used}/{total} GiB · 交换 {swap_used}/{swap_total}{load}",
    },
    "gpus.load": {"en": " · load {value}", "zh": " · 负载 {value}"},
    "gpus.processes": {
        "en": "{count} processes on the GPUs, by {sort} (s sorts)",
        "zh": "GPU 上共 {count} 个进程，按{sort}排序（s 切换）",
    },
    "gpus.no_processes": {"en": "No processes on the GPUs.", "zh": "GPU 上没有进程。"},
    "gpus.sort.memory": {"en": "GPU memory", "zh": "显存"},
    "gpus.sort.gpu": {"en": "GPU", "zh": " GPU "},
    "gpus.sort.pid": {"en": "pid", "zh": " PID "},
    "gpus.sort.user": {"en": "user", "zh": "用户"},
    "gpus.no_selection": {"en": "No process selected.", "zh": "未选中进程。"},
    "gpus.not_ours": {
        "en": "pid {pid} is not one of our jobs; tunequeue only acts on its own jobs.",
        "zh": "进程 {pid} 不属于 tunequeue 的任务；只能操作自己的任务。",
    },
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
    "chat.title_on": {"en": "Job {id} · chat · {device}", "zh": "任务 {id} · 对话 · {device}"},
    "chat.device_gpu": {"en": "GPU {index}", "zh": "GPU {index}"},
    "chat.device_cpu": {"en": "CPU", "zh": "CPU"},
    "chat.picked_gpu": {
        "en": "GPU {index} is free (no job uses it); loading the model there.",
        "zh": "GPU {index} 空闲（没有任务在用），模型将加载到这块 GPU。",
    },
    "chat.picked_cpu": {
        "en": "No GPU is free of jobs; loading the model on the CPU.",
        "zh": "没有空闲的 GPU（都被任务占用或不存在），模型将加载到 CPU。",
    },
    "chat.no_cuda": {
        "en": "GPU {index} was free, but CUDA is not available here; the model runs on the CPU.",
        "zh": "GPU {index} 空闲，但此处无法使用 CUDA；模型在 CPU 上运行。",
    },
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
