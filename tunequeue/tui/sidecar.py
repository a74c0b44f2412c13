"""The TUI's side of ``python -m tunequeue.train.sidecar``: model work in a child process.

torch and transformers load only in the child, so the TUI stays light and its event loop free.
`SidecarClient` starts the child on the first request and answers each request from the calling
thread (screens call it from thread workers, never from the event loop); `stop` ends the child and
reaps it in the background. The protocol is described in `tunequeue.train.sidecar`.

`preview_first_example` renders the wizard's dataset preview in one shared CPU-only child, started
on the first preview and stopped with the app (`stop_all`, also run at interpreter exit).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

STOP_WAIT_SECONDS = 5.0
_STDERR_TAIL_BYTES = 4096


class SidecarError(Exception):
    """A request failed: the child's one-line error, or why the child is gone."""


class SidecarClient:
    """One child process and the requests sent to it, one at a time."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self._stderr: Any = None
        self._lock = threading.Lock()
        self._next_id = 0
        self._stopped = False
        self._reaper: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid (None before the first request)."""
        return self.process.pid if self.process is not None else None

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, **self.env, "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _reap
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tunequeue.train.sidecar"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
            env=env,
        )
        _LIVE.add(self)
        return self.process

    def _gone_reason(self) -> str:
        """Why the child stopped answering: the last line it printed on stderr, or its exit."""
        tail = ""
        if self._stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self._stderr.seek(0, os.SEEK_END)
                size = self._stderr.tell()
                self._stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
                lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
                tail = lines[-1].strip() if lines else ""
        if self._stopped:
            return "stopped"
        return tail or "the model process ended"

    def request(self, op: str, on_piece: Callable[[str], None] | None = None, **fields: Any) -> dict:
        """Send one request and wait for its answer; streamed pieces go to ``on_piece``.

        Raises `SidecarError` with one line when the child answers with an error or ends.
        """
        with self._lock:
            if self._stopped:
                raise SidecarError("stopped")
            process = self.process
            if process is None or process.poll() is not None:
                process = self._start()
            self._next_id += 1
            request_id = self._next_id
            try:
                process.stdin.write(json.dumps({"id": request_id, "op": op, **fields}) + "\n")
                process.stdin.flush()
            except (OSError, ValueError) as error:
                raise SidecarError(self._gone_reason()) from error
            while True:
                try:
                    line = process.stdout.readline()
                except (OSError, ValueError) as error:
                    raise SidecarError(self._gone_reason()) from error
                if not line:
                    raise SidecarError(self._gone_reason())
                try:
                    answer = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(answer, dict) or answer.get("id") != request_id:
                    continue
                if "piece" in answer:
                    if on_piece is not None:
                        on_piece(str(answer["piece"]))
                    continue
                if answer.get("ok"):
                    return answer
                raise SidecarError(str(answer.get("error") or "failed"))

    def stop(self, *, wait: bool = False) -> None:
        """End the child (a reply in progress is abandoned) and reap it; `wait` blocks until it is gone."""
        self._stopped = True
        process = self.process
        if process is None:
            _LIVE.discard(self)
            return
        with contextlib.suppress(OSError, ValueError):
            process.stdin.close()
        if process.poll() is None:
            with contextlib.suppress(OSError):
                process.terminate()
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="sidecar-reaper", daemon=True)
            self._reaper.start()
        if wait:
            self._reaper.join()

    def _reap(self) -> None:
        process = self.process
        try:
            process.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                process.kill()
            process.wait()
        for stream in (process.stdout, self._stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.close()
        _LIVE.discard(self)

    @property
    def finished(self) -> bool:
        """Whether the child has been started, stopped and reaped."""
        return self.process is not None and self.process.returncode is not None and self._stopped


_LIVE: set[SidecarClient] = set()
_PREVIEW: dict[str, SidecarClient] = {}
_PREVIEW_LOCK = threading.Lock()


def _preview_client() -> SidecarClient:
    with _PREVIEW_LOCK:
        client = _PREVIEW.get("client")
        if client is None or client._stopped:
            from tunequeue.runner.interactive import CPU, device_env

            client = SidecarClient(device_env(CPU))
            _PREVIEW["client"] = client
        return client


def preview_first_example(values: dict[str, Any]) -> str:
    """The first example of the task's first dataset rendered with its template (in the child process).

    Blocks until the child answers: call it from a thread worker. Raises `SidecarError`.
    """
    answer = _preview_client().request("preview", values=_plain(values))
    return str(answer.get("text", ""))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """The task values as JSON can carry them (anything else as its text)."""
    return json.loads(json.dumps(values, default=str))


def stop_all(*, wait: bool = True) -> None:
    """Stop every child process this TUI started (at app exit)."""
    with _PREVIEW_LOCK:
        _PREVIEW.pop("client", None)
    for client in list(_LIVE):
        client.stop(wait=wait)


atexit.register(stop_all)
