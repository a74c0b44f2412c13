"""The texts catalog (tunequeue/locales/*.yaml): complete in both languages, and the only home of texts."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

import tunequeue
from tunequeue.core import i18n
from tunequeue.core.spec import GROUPS, all_params

PACKAGE = Path(tunequeue.__file__).parent
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Functions whose first argument is a catalog key, with the prefix their callers leave out.
LOOKUPS = {
    "text": "",
    "t": "",
    "both": "",
    "piece": "",
    "tr": "",
    "lookup": "",
    "wizard_text": "wizard.",
    "presets_text": "presets.",
    "word": "field.",
    "_word": "dialog.",
}


def _fields(template: str) -> set[str]:
    return {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_key_has_both_languages_with_the_same_placeholders():
    en, zh = i18n.catalog("en"), i18n.catalog("zh")
    assert len(en) > 500
    assert set(en) == set(zh), sorted(set(en) ^ set(zh))
    for key in en:
        assert en[key].strip() or key.endswith(("_and", "or_empty")), key
        assert zh[key].strip(), key
        assert _fields(en[key]) == _fields(zh[key]), key


def test_chinese_texts_are_chinese():
    zh = i18n.catalog("zh")
    translated = [key for key, value in zh.items() if CJK.search(value)]
    assert len(translated) > 0.8 * len(zh)
    for info in all_params():
        assert CJK.search(zh[f"param.{info.key}.help"]), info.key


def test_parameters_and_groups_are_in_the_catalog():
    for group_id, _model in GROUPS:
        assert i18n.has_text(f"group.{group_id}"), group_id
    for info in all_params():
        assert i18n.has_text(f"param.{info.key}.help"), info.key
        for choice in info.choices_help:
            assert choice in {str(c) for c in info.choices}, (info.key, choice)
    prefixes = {f"param.{info.key}." for info in all_params()}
    for key in i18n.catalog("en"):
        if key.startswith("param."):
            assert any(key.startswith(p) for p in prefixes), f"{key} names no parameter"


def _literal_keys() -> list[tuple[Path, int, str]]:
    """Every literal (or f-string prefix) key passed to a lookup function in the package."""
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            on_i18n = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            if on_i18n and func.value.id == "i18n":
                name = func.attr
            if name not in LOOKUPS:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((path, node.lineno, LOOKUPS[name] + first.value))
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                found.append((path, node.lineno, LOOKUPS[name] + first.values[0].value + "*"))
    return found


def test_every_key_used_in_code_exists():
    keys = set(i18n.catalog("en"))
    used = _literal_keys()
    assert len(used) > 200
    missing = []
    for path, line, key in used:
        if key.endswith("*"):
            ok = any(k.startswith(key[:-1]) for k in keys)
        else:
            ok = key in keys
        if not ok:
            missing.append(f"{path.relative_to(PACKAGE)}:{line}: {key}")
    assert not missing, missing


def _strings(node: ast.AST) -> list[str]:
    """The literal text pieces of the string constants and f-strings directly inside a literal."""
    pieces = []
    elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else node.values
    for element in elements:
        if isinstance(element, ast.Constant) and isinstance(element.value, str):
            pieces.append(element.value)
        elif isinstance(element, ast.JoinedStr):
            pieces.append("".join(v.value for v in element.values if isinstance(v, ast.Constant)))
        elif isinstance(element, ast.Tuple | ast.List | ast.Dict):
            pieces.extend(_strings(element))
    return pieces


def _bilingual_literals(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict | ast.Tuple | ast.List | ast.Set):
            pieces = _strings(node)
            chinese = any(CJK.search(p) for p in pieces)
            english = any(not CJK.search(p) and LATIN_WORD.search(p) for p in pieces)
            if chinese and english:
                lines.append(node.lineno)
    return lines


def test_the_scan_finds_a_bilingual_table():
    source = 'WORDS = {"yes": ("Yes", "确定")}\nPAIR = (key, f"{key} is bad", f"{key}不对")\n'
    assert sorted(_bilingual_literals(source)) == [1, 1, 2]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_keeps_a_bilingual_table(path):
    assert _bilingual_literals(path.read_text(encoding="utf-8")) == []


def test_catalog_is_read_lazily(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from tunequeue.core import i18n, spec, rules; "
        "i18n.catalog.cache_clear(); "
        "assert i18n.catalog.cache_info().currsize == 0; "
        "spec.param_info('learning_rate'); assert i18n.catalog.cache_info().currsize == 0; "
        "print(spec.param_info('learning_rate').help('zh'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert CJK.search(out.stdout)


def test_locales_are_package_data():
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"locales/*.yaml"' in pyproject
    assert (PACKAGE / "locales" / "en.yaml").is_file() and (PACKAGE / "locales" / "zh.yaml").is_file()
