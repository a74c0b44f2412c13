"""UI strings and the user's language (tunequeue.core.i18n)."""

from __future__ import annotations

import pytest
import yaml

from tunequeue.core import i18n, paths
from tunequeue.core.errors import UserError
from tunequeue.core.spec import GROUPS, group_title


@pytest.fixture(autouse=True)
def _clean_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path))
    for var in ("TUNEQUEUE_LANG", "LANG", "LC_ALL"):
        monkeypatch.delenv(var, raising=False)


def test_strings_have_both_languages_and_group_titles():
    assert set(i18n.catalog("en")) == set(i18n.catalog("zh"))
    titles = {"basic": ("Basic info", "基本信息"), "hyper": ("Hyperparameters", "超参数配置")}
    for group_id, _model in GROUPS:
        assert group_title(group_id, "en") == i18n.t(f"group.{group_id}", "en")
        assert group_title(group_id, "zh") == i18n.t(f"group.{group_id}", "zh")
        if group_id in titles:
            assert (group_title(group_id, "en"), group_title(group_id, "zh")) == titles[group_id]
    assert i18n.t("label.next", "zh") == "下一步"
    assert i18n.t("label.step", "en", n=2, total=5) == "Step 2 of 5"
    assert i18n.t("no.such.key", "zh") == "no.such.key"


def test_language_order(monkeypatch):
    assert i18n.current_language() == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.current_language() == "zh"
    i18n.set_language("en")
    assert i18n.current_language() == "en"  # the saved choice beats LANG
    monkeypatch.setenv("TUNEQUEUE_LANG", "zh")
    assert i18n.current_language() == "zh"  # the environment beats the saved choice
    assert i18n.current_language("en") == "en"  # --lang beats everything


def test_set_language_keeps_other_settings():
    paths.settings_path().write_text("runner:\n  gpu_free_memory_mib: 2048\n", encoding="utf-8")
    i18n.set_language("zh")
    data = yaml.safe_load(paths.settings_path().read_text(encoding="utf-8"))
    assert data == {"runner": {"gpu_free_memory_mib": 2048}, "language": "zh"}
    assert i18n.current_language() == "zh"
    with pytest.raises(UserError, match="en or zh"):
        i18n.set_language("fr")


def test_broken_settings_file_is_reported_and_never_overwritten():
    paths.settings_path().write_text("language: [zh\n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid YAML at line"):
        i18n.current_language()
    with pytest.raises(UserError, match="not valid YAML"):
        i18n.set_language("zh")
    assert paths.settings_path().read_text(encoding="utf-8") == "language: [zh\n"
    assert i18n.current_language("zh") == "zh"  # --lang needs no settings file
