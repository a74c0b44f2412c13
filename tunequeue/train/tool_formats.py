"""Tool-call text for chat templates, in LLaMA-Factory's ``tool_format`` conventions.

A dataset's ``tools`` column (a JSON list of function descriptions) becomes a description appended to
the system prompt (`format_tools`); a ``function_call`` message (JSON ``{"name", "arguments"}`` or a
list of them) becomes the text the model learns to emit (`format_function_call`). Each format is the
one its model family documents: ``default`` (ReAct-style Action / Action Input), ``qwen`` (Qwen 2.5 /
Qwen 3 ``<tool_call>`` JSON), ``qwen3_5`` (Qwen 3.5 ``<function=…>`` / ``<parameter=…>`` blocks),
``glm4``, ``glm4_moe``, ``llama3`` (JSON function calling) and ``mistral`` (``[AVAILABLE_TOOLS]``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from tunequeue.core.errors import UserError

TOOL_FORMATS = ("default", "qwen", "qwen3_5", "glm4", "glm4_moe", "llama3", "mistral")

_DEFAULT_PROMPT = (
    "You have access to the following tools:\n{tool_text}"
    "Use the following format if using a tool:\n"
    "```\n"
    "Action: tool name (one of [{tool_names}])\n"
    "Action Input: the input to the tool, in a JSON format representing the kwargs "
    '(e.g. ```{{"input": "hello world", "num_beams": 5}}```)\n'
    "```\n"
)
_QWEN_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, '
    '"arguments": <args-json-object>}}\n</tool_call>'
)
_QWEN35_PROMPT = (
    "\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>{tool_text}"
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\n"
    "multiple lines\n"
    "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: "
    "an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language "
    "BEFORE the function call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>"
)
_GLM4_MOE_PROMPT = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tool_text}"
    "\n</tools>\n\nFor each function call, output the function name and arguments within the following "
    "XML format:"
    "\n<tool_call>{{function-name}}"
    "\n<arg_key>{{arg-key-1}}</arg_key>"
    "\n<arg_value>{{arg-value-1}}</arg_value>"
    "\n<arg_key>{{arg-key-2}}</arg_key>"
    "\n<arg_value>{{arg-value-2}}</arg_value>"
    "\n...\n</tool_call>\n"
)
_GLM4_PROMPT = (
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
    "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具{tool_text}"
)
_LLAMA3_PROMPT = (
    "Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n"
    "You have access to the following functions. "
    "To call a function, please respond with JSON for a function call. "
    'Respond in the format {{"name": function name, '
    '"parameters": dictionary of argument name and its value}}. '
    "Do not use variables.\n\n{tool_text}"
)


def _unwrap(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", {}) if tool.get("type") == "function" else tool


def _wrap(tool: dict[str, Any]) -> dict[str, Any]:
    return tool if tool.get("type") == "function" else {"type": "function", "function": tool}


def _default_tools(tools: list[dict[str, Any]]) -> str:
    text, names = "", []
    for tool in map(_unwrap, tools):
        params = ""
        parameters = tool.get("parameters", {})
        for name, param in parameters.get("properties", {}).items():
            required = ", required" if name in parameters.get("required", []) else ""
            enum = ", should be one of [{}]".format(", ".join(param["enum"])) if param.get("enum") else ""
            items = (
                ", where each item should be {}".format(param["items"].get("type", ""))
                if param.get("items")
                else ""
            )
            kind, about = param.get("type", ""), param.get("description", "")
            params += f"  - {name} ({kind}{required}): {about}{enum}{items}\n"
        about = tool.get("description", "")
        text += f"> Tool Name: {tool['name']}\nTool Description: {about}\nTool Args:\n{params}\n"
        names.append(tool["name"])
    return _DEFAULT_PROMPT.format(tool_text=text, tool_names=", ".join(names))


def _tools_text(tool_format: str, tools: list[dict[str, Any]]) -> str:
    if tool_format == "default":
        return _default_tools(tools)
    if tool_format in ("qwen", "glm4_moe"):
        text = "".join("\n" + json.dumps(_wrap(tool), ensure_ascii=False) for tool in tools)
        return (_QWEN_PROMPT if tool_format == "qwen" else _GLM4_MOE_PROMPT).format(tool_text=text)
    if tool_format == "qwen3_5":
        text = "".join("\n" + json.dumps(_unwrap(tool), ensure_ascii=False) for tool in tools)
        return _QWEN35_PROMPT.format(tool_text=text)
    if tool_format == "glm4":
        text = "".join(
            "\n\n## {name}\n\n{body}\n在调用上述函数时，请使用 Json 格式表示调用的参数。".format(
                name=tool["name"], body=json.dumps(tool, indent=4, ensure_ascii=False)
            )
            for tool in map(_unwrap, tools)
        )
        return _GLM4_PROMPT.format(tool_text=text)
    if tool_format == "llama3":
        text = "".join(json.dumps(_wrap(tool), indent=4, ensure_ascii=False) + "\n\n" for tool in tools)
        return _LLAMA3_PROMPT.format(date=datetime.now().strftime("%d %b %Y"), tool_text=text)
    if tool_format == "mistral":
        return (
            "[AVAILABLE_TOOLS] "
            + json.dumps([_wrap(tool) for tool in tools], ensure_ascii=False)
            + "[/AVAILABLE_TOOLS]"
        )
    raise UserError(f"tool_format '{tool_format}' is unknown; use one of {', '.join(TOOL_FORMATS)}")


def format_tools(tool_format: str, tools: str) -> str:
    """The system-prompt text describing ``tools`` (a JSON list); empty for an empty list."""
    try:
        parsed = json.loads(tools)
    except json.JSONDecodeError as err:
        raise UserError(
            f"the tools column holds invalid JSON ({err.msg}); give a JSON list of functions"
        ) from err
    if not parsed:
        return ""
    return _tools_text(tool_format, parsed if isinstance(parsed, list) else [parsed])


def format_function_call(tool_format: str, content: str, thought_words: tuple[str, str] | None = None) -> str:
    """The text of a function-call message (JSON ``{"name", "arguments"}`` or a list of them).

    A thought in front of the call (between ``thought_words``) stays in front of the formatted call.
    """
    thought = None
    if thought_words:
        pattern = re.compile(f"{re.escape(thought_words[0])}(.*?){re.escape(thought_words[1])}", re.DOTALL)
        thought = pattern.search(content)
        if thought:
            content = content.replace(thought.group(0), "")
    try:
        calls = json.loads(content)
    except json.JSONDecodeError as err:
        raise UserError(
            f'a function_call message is not valid JSON ({err.msg}); write {{"name": ..., "arguments": ...}}'
        ) from err
    calls = calls if isinstance(calls, list) else [calls]
    try:
        functions = [(call["name"], call["arguments"]) for call in calls]
    except (KeyError, TypeError) as err:
        raise UserError('a function_call message needs "name" and "arguments" in every call') from err
    text = _calls_text(tool_format, functions)
    return thought.group(0) + text if thought else text


def _calls_text(tool_format: str, functions: list[tuple[str, Any]]) -> str:
    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    if tool_format == "default":
        return "\n".join(f"Action: {name}\nAction Input: {dumps(args)}" for name, args in functions)
    if tool_format == "qwen":
        return "\n".join(
            f"<tool_call>\n{dumps({'name': name, 'arguments': args})}\n</tool_call>"
            for name, args in functions
        )
    if tool_format == "qwen3_5":
        texts = []
        for name, args in functions:
            text = f"<tool_call>\n<function={name}>"
            for key, value in args.items():
                text += (
                    f"\n<parameter={key}>\n{value if isinstance(value, str) else dumps(value)}\n</parameter>"
                )
            texts.append(text + "\n</function>\n</tool_call>")
        return "\n".join(texts)
    if tool_format == "glm4":
        if len(functions) > 1:
            raise UserError("tool_format glm4 takes one function call per message; split parallel calls")
        name, args = functions[0]
        return f"{name}\n{dumps(args)}"
    if tool_format == "glm4_moe":
        texts = []
        for name, args in functions:
            text = "\n<tool_call>" + name
            for key, value in args.items():
                shown = value if isinstance(value, str) else dumps(value)
                text += f"\n<arg_key>{key}</arg_key>\n<arg_value>{shown}</arg_value>"
            texts.append(text)
        return "\n".join(texts)
    if tool_format == "llama3":
        objects = [{"name": name, "parameters": args} for name, args in functions]
        return dumps(objects[0] if len(objects) == 1 else objects)
    if tool_format == "mistral":
        return dumps([{"name": name, "arguments": args} for name, args in functions])
    raise UserError(f"tool_format '{tool_format}' is unknown; use one of {', '.join(TOOL_FORMATS)}")
