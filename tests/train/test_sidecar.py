"""The model child process (`python -m tunequeue.train.sidecar`) through the TUI's client: a real
dataset preview and a real chat with the bundled tiny model; errors come back as one line."""

from __future__ import annotations

import pytest

from tunequeue.tui.sidecar import SidecarClient, SidecarError, preview_first_example, stop_all


@pytest.fixture
def client():
    sidecar = SidecarClient({"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
    yield sidecar
    sidecar.stop(wait=True)
    assert sidecar.process is None or sidecar.process.returncode is not None


def test_preview_renders_the_first_example_with_the_template():
    try:
        text = preview_first_example(
            {"model_name_or_path": "tunequeue/tiny-llama", "dataset": "demo_alpaca", "template": "qwen"}
        )
        assert "<|im_start|>user\n" in text and "<|im_start|>assistant\n" in text
        with pytest.raises(SidecarError, match="no_such_dataset"):
            preview_first_example(
                {"model_name_or_path": "tunequeue/tiny-llama", "dataset": "no_such_dataset"}
            )
    finally:
        stop_all()


def test_chat_loads_streams_remembers_and_clears(client):
    with pytest.raises(SidecarError, match="no model is loaded"):
        client.request("chat.send", message="hi")
    loaded = client.request(
        "chat.load", model="tunequeue/tiny-llama", adapter=None, template="qwen",
        max_new_tokens=6, temperature=0.0, top_p=1.0, do_sample=False, device="cuda",
    )
    assert loaded["device"] == "cpu"  # CUDA_VISIBLE_DEVICES is empty: asked for a GPU, none visible
    pieces: list[str] = []
    answer = client.request("chat.send", on_piece=pieces.append, message="hello")
    assert pieces and answer["reply"] == "".join(pieces).strip()
    assert answer["turns"] == 1
    history = client.request("chat.history")["history"]
    assert history == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": answer["reply"]},
    ]
    assert client.request("chat.clear")["turns"] == 0
    assert client.request("chat.history")["history"] == []
    with pytest.raises(SidecarError, match="unknown request"):
        client.request("nonsense")


def test_a_missing_model_is_one_line_and_the_child_lives_on(client, tmp_path):
    with pytest.raises(SidecarError) as error:
        client.request("chat.load", model=str(tmp_path / "nothing"), device="cpu")
    assert "\n" not in str(error.value)
    pid = client.pid
    with pytest.raises(SidecarError, match="no model is loaded"):
        client.request("chat.clear")
    assert client.pid == pid and client.process.poll() is None


def test_stop_ends_and_reaps_the_child(client):
    with pytest.raises(SidecarError):
        client.request("chat.clear")
    process = client.process
    client.stop(wait=True)
    assert process.returncode is not None
    with pytest.raises(SidecarError, match="stopped"):
        client.request("chat.clear")
