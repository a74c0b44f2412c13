"""CLI commands: ui (the Textual interface)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("ui")
    def ui(
        lang: Optional[str] = typer.Option(
            None,
            "--lang",
            help="Interface language for this session: en or zh (default: the remembered one).",
        ),
        home: Optional[Path] = typer.Option(
            None, "--home", help="Use this tunequeue home instead of TUNEQUEUE_HOME.", file_okay=False
        ),
        job: Optional[int] = typer.Option(
            None, "--job", help="Open this job's dashboard on top of the queue."
        ),
    ) -> None:
        """Open the terminal interface: queue, task wizard, live dashboards, GPUs and presets."""
        from tunequeue.core.errors import UserError

        if lang is not None and lang not in ("en", "zh"):
            raise UserError(f"--lang {lang!r} is not a language tunequeue speaks; use --lang en or --lang zh")
        from tunequeue.tui.app import make_app

        make_app(home=home, lang=lang, open_job=job).run()
