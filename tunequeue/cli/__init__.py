"""The `tunequeue` command line: a thin typer app over core, jobqueue and runner.

Each concern registers its commands from its own module:

- `task_commands`: ``params`` (the parameter reference) and ``validate FILE``.
- `job_commands`: ``submit`` (with sweeps), ``ls``, ``show``, ``logs``, ``wait``, ``cancel``, ``retry``,
  ``rm``, ``hold``, ``release`` and the other commands on jobs.
- `preset_commands`: ``preset ls | show | create | edit | cp | rm``.
- `runner_commands`: ``runner start | stop | status | install-service``.
- `train_commands`: ``train FILE`` in the foreground, without the queue.
- `model_commands`: ``chat``, ``export``, ``expand-blocks``, ``eval``, ``predict`` (foreground).
- `db_commands`: ``db check | backup | restore``.
- `ui_commands`: ``ui``, the Textual interface (`tunequeue.tui`).
- `output`: JSON for ``--json``, rich tables otherwise.

Modules import only typer at import time; everything heavier is imported inside the command, so
`tunequeue --help` starts instantly. `main()` turns a `UserError` or a bad option into one line on
stderr and exit 2, and so it does for a full disk and a locked or damaged queue database, whichever
command meets them.
"""

from __future__ import annotations

import sqlite3
import sys

import typer

from tunequeue import __version__

app = typer.Typer(
    name="tunequeue",
    help="Queue, run and watch LLM fine-tuning jobs on headless NVIDIA GPU servers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tunequeue {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Queue, run and watch LLM fine-tuning jobs on headless NVIDIA GPU servers."""


def _register_all() -> None:
    from tunequeue.cli import (
        db_commands,
        job_commands,
        model_commands,
        preset_commands,
        runner_commands,
        task_commands,
        train_commands,
        ui_commands,
    )

    for module in (task_commands, preset_commands, job_commands, runner_commands, train_commands, ui_commands,
                   model_commands, db_commands):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; a `UserError` becomes one line on stderr and exit 2.

    With ``argv`` given (tests), the code is returned instead of exiting the interpreter.
    """
    from typer.exceptions import TyperException

    from tunequeue.core.errors import UserError

    try:
        result = app(args=argv, prog_name="tunequeue", standalone_mode=False)
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except UserError as err:
        typer.echo(f"error: {err.message}", err=True)
        code = err.exit_code
    except TyperException as err:  # a bad option or argument: one line, as for every user mistake
        message = err.format_message() if hasattr(err, "format_message") else str(err) or "aborted"
        if type(err).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
            typer.echo(message, err=True)
        else:
            typer.echo(f"error: {' '.join(message.split()).rstrip('.')}; see `tunequeue --help`", err=True)
        code = getattr(err, "exit_code", 1)
    except (OSError, sqlite3.Error) as err:
        # Disk full, a locked or a damaged queue: one line, whichever command met it.
        from tunequeue.jobqueue.db import as_user_error

        known = as_user_error(err)
        if known is None:
            raise
        typer.echo(f"error: {known.message}", err=True)
        code = known.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    if argv is None:
        sys.exit(code)
    return code
