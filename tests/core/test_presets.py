"""Presets API: built-ins, CRUD against a temp TUNEQUEUE_HOME, refusals, precedence."""

from __future__ import annotations

import pytest

from tunequeue.core import presets
from tunequeue.core.errors import UserError
from tunequeue.core.rules import check_task


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_builtins_are_listed_and_valid():
    refs = [p.ref for p in presets.list_presets()]
    for ref in ("default/sft-lora", "default/sft-qlora", "default/sft-full", "default/dpo-lora"):
        assert ref in refs
    for preset in presets.list_presets():
        assert preset.builtin
        presets.validate_values(preset.stage, preset.finetuning_type, preset.values)


def test_sft_lora_holds_the_corrected_seed_defaults():
    preset = presets.get_preset("default/sft-lora")
    assert preset.stage == "sft" and preset.finetuning_type == "lora"
    expected = {
        "lr_scheduler_type": "cosine",
        "optim": "adamw_torch",
        "lora_alpha": 16,
        "lora_rank": 8,
        "lora_dropout": 0.1,
        "quantization_bit": None,
        "learning_rate": 1e-4,
        "num_train_epochs": 3.0,
        "cutoff_len": 2048,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 8,
        "warmup_ratio": 0.1,
        "weight_decay": 0.0,
        "trainer_type": "standard",
    }
    for key, value in expected.items():
        assert preset.values[key] == value, key
    assert preset.values["compute_type"] in ("auto", "bf16")
    assert presets.get_preset("sft-qlora").values["quantization_bit"] == 4  # bare name = default ns


def test_crud_cycle(home):
    created = presets.create_preset(
        "team-a/fast", values={"learning_rate": 2e-4, "lora_rank": 16}, description="quick runs"
    )
    assert created.path == home / "presets" / "team-a" / "fast.yaml" and created.path.is_file()
    assert created.created_at == created.updated_at
    assert [p.ref for p in presets.list_presets("team-a")] == ["team-a/fast"]
    assert presets.get_preset("team-a/fast").values == {"learning_rate": 2e-4, "lora_rank": 16}

    edited = presets.edit_preset(
        "team-a/fast", values={"lora_alpha": 32}, expected_updated_at=created.updated_at
    )
    assert edited.values == {"learning_rate": 2e-4, "lora_rank": 16, "lora_alpha": 32}
    assert edited.updated_at > created.updated_at and edited.created_at == created.created_at
    with pytest.raises(UserError, match="changed elsewhere"):
        presets.edit_preset("team-a/fast", values={"lora_alpha": 8}, expected_updated_at=created.updated_at)

    unset = presets.edit_preset("team-a/fast", unset=["lora_alpha"], description="renamed soon")
    assert "lora_alpha" not in unset.values and unset.description == "renamed soon"

    renamed = presets.edit_preset("team-a/fast", rename="faster")
    assert renamed.ref == "team-a/faster"
    with pytest.raises(UserError, match="no preset team-a/fast"):
        presets.get_preset("team-a/fast")

    copy = presets.copy_preset("default/sft-qlora", "team-b/my-qlora")
    assert not copy.builtin and copy.values == presets.get_preset("default/sft-qlora").values
    assert presets.namespaces() == ["default", "team-a", "team-b"]

    presets.delete_preset("team-a/faster")
    assert not (home / "presets" / "team-a").exists()
    assert [p.ref for p in presets.list_presets("team-a")] == []


@pytest.mark.parametrize(
    ("ref", "values", "message"),
    [
        ("Bad/x", {}, "namespace 'Bad' is invalid"),
        ("team/-x", {}, "preset name '-x' is invalid"),
        ("team/" + "a" * 64, {}, "is invalid"),
        ("a/b/c", {}, "NAMESPACE/NAME"),
        ("team/x", {"learnig_rate": 1e-4}, "did you mean 'learning_rate'"),
        ("team/x", {"model_name_or_path": "/m"}, "belongs to the task"),
        ("team/x", {"dataset": "d"}, "belongs to the task"),
        ("team/x", {"gpu_count": 2}, "belongs to the task"),
        ("team/x", {"task_name": "t"}, "belongs to the task"),
        ("team/x", {"learning_rate": 0.5}, "learning_rate"),
        ("team/x", {"lora_rank": 0}, "lora_rank"),
        ("team/x", {"optim": "lion"}, "optim"),
    ],
)
def test_refusals(ref, values, message):
    with pytest.raises(UserError, match=message):
        presets.create_preset(ref, values=values)


def test_cross_field_rules_apply():
    with pytest.raises(UserError, match="quantization"):
        presets.create_preset("team/x", finetuning_type="full", values={"quantization_bit": 4})


def test_name_clash_and_builtins_read_only():
    presets.create_preset("team/x", values={})
    with pytest.raises(UserError, match="already exists"):
        presets.create_preset("team/x", values={})
    with pytest.raises(UserError, match="already exists"):
        presets.create_preset("default/sft-lora", values={})
    with pytest.raises(UserError, match="built-in .* copy it first"):
        presets.edit_preset("default/sft-lora", values={"learning_rate": 2e-4})
    with pytest.raises(UserError, match="built-in"):
        presets.delete_preset("default/sft-lora")
    with pytest.raises(UserError, match="already exists"):
        presets.copy_preset("default/sft-lora", "team/x")
    presets.create_preset("team/y", values={})
    with pytest.raises(UserError, match="already exists"):
        presets.edit_preset("team/x", rename="y")


def test_warnings_returned_not_errors():
    created = presets.create_preset("team/slow", values={"learning_rate": 5e-6})
    assert any("learning_rate" in w for w in created.warnings)


def test_precedence_task_over_preset_over_default():
    preset = presets.create_preset(
        "team/p", values={"learning_rate": 3e-4, "lora_rank": 16, "num_train_epochs": 1.0}
    )
    task = {"task_name": "t", "model_name_or_path": "/m", "dataset": "demo_alpaca", "lora_rank": 4}
    merged = presets.apply_preset(preset, task)
    spec = check_task(merged).spec
    assert spec.lora_rank == 4  # the task's explicit value wins
    assert spec.learning_rate == pytest.approx(3e-4)  # the preset fills what the task left out
    assert spec.cutoff_len == 2048  # neither sets it: the default
    assert spec.preset_ref == "team/p"
    # snapshot: editing the preset later does not change the merged task values
    presets.edit_preset("team/p", values={"learning_rate": 1e-5})
    assert merged["learning_rate"] == pytest.approx(3e-4)
    assert presets.apply_preset("team/p", {})["learning_rate"] == pytest.approx(1e-5)


def test_broken_user_file_is_reported(home):
    folder = home / "presets" / "team"
    folder.mkdir(parents=True)
    (folder / "bad.yaml").write_text("values: [1, 2\n")
    with pytest.raises(UserError, match="fix or delete it"):
        presets.list_presets()
    with pytest.raises(UserError) as caught:
        presets.list_presets()
    assert "\n" not in str(caught.value)  # the YAML error's several lines, joined into one


def test_problems_collects_what_cannot_be_read_and_lists_the_rest(home):
    presets.copy_preset("default/sft-lora", "team/good")
    (home / "presets" / "team" / "bad.yaml").write_text("values: [1, 2\n")
    problems: list[str] = []
    refs = [p.ref for p in presets.list_presets(problems=problems)]
    assert "team/good" in refs and "team/bad" not in refs and "default/sft-lora" in refs
    assert len(problems) == 1
    assert problems[0].startswith(f"preset file {home / 'presets' / 'team' / 'bad.yaml'} cannot be read (")
    assert problems[0].endswith("; fix or delete it.") and "\n" not in problems[0]


def test_a_file_where_the_user_presets_folder_should_be(home):
    home.mkdir()
    (home / "presets").write_text("x\n")
    builtins = [p.ref for p in presets.list_presets()]  # without `problems`: just no user presets
    assert "default/sft-lora" in builtins and all(p.builtin for p in presets.list_presets())
    problems: list[str] = []
    assert [p.ref for p in presets.list_presets(problems=problems)] == builtins
    assert problems == [
        f"user presets folder {home / 'presets'} exists but is not a directory; move it away."
    ]
    assert not presets.preset_exists("team/any")
    with pytest.raises(UserError, match="is not a directory; move it away and try again"):
        presets.copy_preset("default/sft-lora", "team/any")


def test_preset_exists_reads_no_file(home):
    assert presets.preset_exists("default/sft-lora") and presets.preset_exists("sft-qlora")
    assert not presets.preset_exists("team/mine") and not presets.preset_exists("default/mine")
    presets.copy_preset("default/sft-lora", "team/mine")
    (home / "presets" / "team" / "broken.yaml").write_text("values: [1, 2\n")
    assert presets.preset_exists("team/mine")
    assert presets.preset_exists("team/broken")  # taken, even though it cannot be read
