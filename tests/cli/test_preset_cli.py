"""`tunequeue preset …` end to end against a temp TUNEQUEUE_HOME: CRUD, refusals, built-ins read-only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tunequeue.cli import main


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEQUEUE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_crud_through_the_cli(capsys, home, tmp_path):
    code, out, _ = run(capsys, "preset", "ls", "--json")
    assert code == 0
    assert {"default/sft-lora", "default/sft-qlora", "default/sft-full", "default/dpo-lora"} <= {
        f"{p['namespace']}/{p['name']}" for p in json.loads(out)
    }

    code, out, err = run(
        capsys, "preset", "create", "team/fast", "--set", "learning_rate=2e-4", "--set", "lora_rank=16",
        "--description", "quick runs",
    )
    assert (code, out.strip()) == (0, "created preset team/fast"), err
    assert (home / "presets" / "team" / "fast.yaml").is_file()

    code, out, _ = run(capsys, "preset", "show", "team/fast", "--json")
    shown = json.loads(out)
    assert shown["values"] == {"learning_rate": 2e-4, "lora_rank": 16}
    assert shown["description"] == "quick runs" and shown["builtin"] is False

    code, out, _ = run(capsys, "preset", "show", "team/fast")
    assert code == 0 and "lora_rank" in out and "(default 8)" in out

    code, out, _ = run(
        capsys, "preset", "edit", "team/fast", "--set", "lora_alpha=32", "--unset", "lora_rank"
    )
    assert code == 0
    code, out, _ = run(capsys, "preset", "show", "team/fast", "--json")
    assert json.loads(out)["values"] == {"learning_rate": 2e-4, "lora_alpha": 32}

    code, out, _ = run(capsys, "preset", "edit", "team/fast", "--rename", "faster")
    assert code == 0 and "team/faster" in out

    code, out, _ = run(capsys, "preset", "cp", "default/dpo-lora", "team/my-dpo")
    assert code == 0
    code, out, _ = run(capsys, "preset", "ls", "--namespace", "team")
    assert "team/faster" in out and "team/my-dpo" in out and "default/" not in out

    code, out, _ = run(capsys, "preset", "rm", "team/faster", "--yes")
    assert code == 0 and "deleted" in out
    code, out, _ = run(capsys, "preset", "ls", "--namespace", "team", "--json")
    assert [p["name"] for p in json.loads(out)] == ["my-dpo"]


def test_create_from_file(capsys, tmp_path):
    task = tmp_path / "task.yaml"
    task.write_text(
        "task_name: t\nmodel_name_or_path: /m\ndataset: d\nstage: dpo\n"
        "learning_rate: 5.0e-6\npref_beta: 0.2\n"
    )
    code, out, err = run(capsys, "preset", "create", "team/from-task", "--from-file", str(task))
    assert code == 0, err
    assert "task fields left out" in err and "model_name_or_path" in err
    code, out, _ = run(capsys, "preset", "show", "team/from-task", "--json")
    shown = json.loads(out)
    assert shown["stage"] == "dpo" and shown["values"] == {"learning_rate": 5e-6, "pref_beta": 0.2}

    preset_file = tmp_path / "preset.yaml"
    preset_file.write_text("stage: sft\nfinetuning_type: full\nvalues:\n  learning_rate: 1.0e-5\n")
    code, _, err = run(
        capsys, "preset", "create", "team/full", "-f", str(preset_file), "--set", "cutoff_len=1024"
    )
    assert code == 0, err
    code, out, _ = run(capsys, "preset", "show", "team/full", "--json")
    assert json.loads(out)["finetuning_type"] == "full"
    assert json.loads(out)["values"] == {"learning_rate": 1e-5, "cutoff_len": 1024}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("preset", "create", "Team/x"), "namespace 'Team' is invalid"),
        (("preset", "create", "team/x", "--set", "learnig_rate=1e-4"), "did you mean 'learning_rate'"),
        (("preset", "create", "team/x", "--set", "lora_rank=0"), "lora_rank"),
        (("preset", "create", "team/x", "--set", "dataset=d"), "belongs to the task"),
        (("preset", "create", "team/x", "--set", "noequals"), "key=value"),
        (("preset", "create", "default/sft-lora"), "already exists"),
        (("preset", "edit", "default/sft-lora", "--set", "lora_rank=4"), "built-in"),
        (("preset", "rm", "default/sft-lora", "--yes"), "built-in"),
        (("preset", "show", "team/nope"), "no preset team/nope"),
        (("preset", "edit", "default/sft-lora"), "nothing to change"),
    ],
)
def test_refusals_are_one_line_exit_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_rm_without_yes_and_without_tty_refuses(home, tmp_path):
    env = {**os.environ, "TUNEQUEUE_HOME": str(home)}
    cli = [sys.executable, "-m", "tunequeue"]
    subprocess.run([*cli, "preset", "create", "team/x"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [*cli, "preset", "rm", "team/x"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "add --yes" in done.stderr and "Traceback" not in done.stderr
    assert (home / "presets" / "team" / "x.yaml").is_file()
    done = subprocess.run([*cli, "preset", "rm", "team/x", "--yes"], env=env, capture_output=True, text=True)
    assert done.returncode == 0
    assert not (home / "presets" / "team" / "x.yaml").exists()


def test_precedence_through_submit_flow(capsys, tmp_path):
    """task explicit > preset > default, as the CLI applies a preset to a task file."""
    from tunequeue.core.presets import apply_preset, get_preset
    from tunequeue.core.rules import check_task

    run(capsys, "preset", "create", "team/p", "--set", "learning_rate=3e-4", "--set", "lora_rank=16")
    task = {"task_name": "t", "model_name_or_path": "/m", "dataset": "demo_alpaca", "lora_rank": 4}
    spec = check_task(apply_preset(get_preset("team/p"), task)).spec
    assert (spec.lora_rank, spec.learning_rate, spec.cutoff_len) == (4, 3e-4, 2048)
    assert spec.preset_ref == "team/p"


def test_ls_lists_what_it_can_read_and_names_a_broken_file(capsys, home):
    code, _, err = run(capsys, "preset", "create", "team/good", "--set", "learning_rate=2e-4")
    assert code == 0, err
    broken = home / "presets" / "team" / "bad.yaml"
    broken.write_text("values: [unclosed\n")
    code, out, err = run(capsys, "preset", "ls")
    assert code == 0
    assert "team/good" in out and "default/sft-lora" in out and "team/bad" not in out
    [warning] = err.strip().splitlines()
    assert warning.startswith("warning: ") and str(broken) in warning
    code, out, err = run(capsys, "preset", "ls", "--json")
    assert code == 0 and "team/good" in {f"{p['namespace']}/{p['name']}" for p in json.loads(out)}
    assert str(broken) in err
