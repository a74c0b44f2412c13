"""English and Chinese UI strings, and the user's language.

`STRINGS` maps a key to its ``{"en": ..., "zh": ...}`` texts; `t(key, lang, **fmt)` looks one up and
formats it. Screens and commands add their own blocks to `STRINGS` (or keep a per-screen dict that
falls back to this one). Parameter help is not here: it lives with each field in `tunequeue.core.spec`.

The language is, in order: an explicit choice (``--lang``), the ``TUNEQUEUE_LANG`` environment variable,
the ``language`` saved in the home's settings.yaml by `set_language`, then ``LANG``/``LC_ALL`` starting
with ``zh`` → Chinese, else English.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

LANGUAGES = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    # wizard groups (ids as in tunequeue.core.spec.GROUPS)
    "group.basic": {"en": "Basic info", "zh": "基本信息"},
    "group.task": {"en": "Task config", "zh": "任务配置"},
    "group.hyper": {"en": "Hyperparameters", "zh": "超参数配置"},
    "group.lora": {"en": "LoRA settings", "zh": "LoRA参数配置"},
    "group.other": {"en": "Other settings", "zh": "其他参数配置"},
    "group.freeze": {"en": "Freeze", "zh": "部分参数微调"},
    "group.lora_extras": {"en": "LoRA extras", "zh": "LoRA扩展"},
    "group.preference": {"en": "RLHF / preference", "zh": "RLHF / 偏好训练"},
    "group.galore": {"en": "GaLore", "zh": "GaLore"},
    "group.badam": {"en": "BAdam", "zh": "BAdam"},
    "group.dataset": {"en": "Dataset", "zh": "数据集"},
    "group.output": {"en": "Output & logging", "zh": "输出与日志"},
    "group.eval": {"en": "Evaluate & predict", "zh": "评估与预测"},
    "group.export": {"en": "Export", "zh": "导出"},
    "group.advanced": {"en": "Advanced", "zh": "高级配置"},
    # common labels
    "label.next": {"en": "Next", "zh": "下一步"},
    "label.back": {"en": "Back", "zh": "上一步"},
    "label.submit": {"en": "Submit", "zh": "提交"},
    "label.confirm": {"en": "Confirm", "zh": "确认"},
    "label.cancel": {"en": "Cancel", "zh": "取消"},
    "label.save": {"en": "Save", "zh": "保存"},
    "label.delete": {"en": "Delete", "zh": "删除"},
    "label.edit": {"en": "Edit", "zh": "编辑"},
    "label.copy": {"en": "Copy", "zh": "复制"},
    "label.close": {"en": "Close", "zh": "关闭"},
    "label.yes": {"en": "Yes", "zh": "是"},
    "label.no": {"en": "No", "zh": "否"},
    "label.ok": {"en": "OK", "zh": "确定"},
    "label.errors": {"en": "Errors", "zh": "错误"},
    "label.warnings": {"en": "Warnings", "zh": "警告"},
    "label.recommended": {"en": "Recommended", "zh": "推荐"},
    "label.default": {"en": "Default", "zh": "默认值"},
    "label.allowed": {"en": "Allowed", "zh": "允许值"},
    "label.type": {"en": "Type", "zh": "类型"},
    "label.key": {"en": "Key", "zh": "参数"},
    "label.value": {"en": "Value", "zh": "值"},
    "label.help": {"en": "Help", "zh": "说明"},
    "label.group": {"en": "Group", "zh": "分组"},
    "label.required": {"en": "required", "zh": "必填"},
    "label.none": {"en": "none", "zh": "无"},
    "label.preset": {"en": "Preset", "zh": "参数组"},
    "label.language": {"en": "Language", "zh": "语言"},
    "label.step": {"en": "Step {n} of {total}", "zh": "第{n}步，共{total}步"},
    "label.total_steps": {"en": "Total steps", "zh": "总步数"},
    "label.effective_batch": {"en": "Effective batch", "zh": "有效批大小"},
    "label.vram_estimate": {"en": "VRAM estimate", "zh": "显存估算"},
    # validate command
    "validate.task": {"en": "Resolved task", "zh": "解析后的任务"},
    "validate.ok": {"en": "OK: the task is valid.", "zh": "通过：任务配置有效。"},
    "validate.failed": {
        "en": "{count} error(s): the task cannot be queued.",
        "zh": "{count}个错误：任务无法入队。",
    },
    "validate.estimate": {
        "en": "Estimated peak VRAM per GPU: {gib:.1f} GiB",
        "zh": "每卡显存峰值估算：{gib:.1f} GiB",
    },
    "validate.no_estimate": {
        "en": "VRAM estimate unavailable: {reason}",
        "zh": "无法估算显存：{reason}",
    },
    # params command
    "params.title": {"en": "Task parameters", "zh": "任务参数"},
    "params.tq_only": {"en": "tunequeue only", "zh": "仅tunequeue"},
}


def lookup(key: str, lang: str, strings: Mapping[str, Mapping[str, str]] = STRINGS) -> str | None:
    """The unformatted ``lang`` text of ``key`` in ``strings``; English when there is no Chinese; None
    when ``strings`` lacks the key (a screen's own table falls back to this module's this way)."""
    entry = strings.get(key)
    if entry is None:
        return None
    return entry.get(lang) or entry["en"]


def t(key: str, lang: str = "en", **fmt: Any) -> str:
    """The ``lang`` text of ``key`` formatted with ``fmt``; English when there is no Chinese; the key
    itself when unknown (so a missing string shows up plainly instead of crashing a screen)."""
    text = lookup(key, lang)
    if text is None:
        return key
    return text.format(**fmt) if fmt else text


def normalize_language(value: str | None) -> str | None:
    """``"zh"``/``"en"`` for values like ``zh_CN.UTF-8``, ``zh-TW``, ``EN``; None when unrecognised."""
    if not value:
        return None
    lowered = value.strip().lower()
    if lowered.startswith("zh"):
        return "zh"
    if lowered.startswith("en"):
        return "en"
    return None


def _saved_language() -> str | None:
    from tunequeue.core.settings_file import read_settings

    try:
        data = read_settings()
    except OSError:
        return None
    return normalize_language(data.get("language"))


def current_language(explicit: str | None = None) -> str:
    """The language to use: ``explicit`` (--lang), TUNEQUEUE_LANG, the saved setting, LANG, else en."""
    for candidate in (explicit, os.environ.get("TUNEQUEUE_LANG")):
        lang = normalize_language(candidate)
        if lang:
            return lang
    saved = _saved_language()
    if saved:
        return saved
    for var in ("LC_ALL", "LANG"):
        if normalize_language(os.environ.get(var)) == "zh":
            return "zh"
    return "en"


def set_language(lang: str) -> None:
    """Save ``lang`` ("en" or "zh") in settings.yaml, keeping the file's other settings."""
    chosen = normalize_language(lang)
    if chosen is None:
        from tunequeue.core.errors import UserError

        raise UserError(f"language must be en or zh; got '{lang}'")
    from tunequeue.core.settings_file import read_settings, write_settings

    data = read_settings()  # a file that cannot be parsed is reported, never overwritten
    data["language"] = chosen
    write_settings(data)
