"""CLI commands for the queue database itself: `db check | backup | restore [BACKUP]`.

``check`` runs SQLite's integrity check and lists the backups; ``backup`` makes one now (the runner also
makes one a day, and one is made before each schema migration; the newest 7 are kept under
``HOME/backups``); ``restore`` puts a backup (default: the newest) in place of queue.db, refusing while a
runner uses the queue and keeping the replaced file next to the backups.
"""

from __future__ import annotations

import typer

from tunequeue.cli.output import print_json

db_app = typer.Typer(
    help="Check, back up and restore the queue database (queue.db).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@db_app.command()
def check(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Check queue.db with SQLite's integrity check and list the backups."""
    from tunequeue.jobqueue.db import check_db

    result = check_db()
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{result['path']} is intact: {result['jobs']} job(s), schema version {result['schema_version']}"
    )
    backups = result["backups"]
    if backups:
        typer.echo(f"{len(backups)} backup(s), newest {backups[-1]}")
    else:
        typer.echo("no backups yet (make one with `tunequeue db backup`)")


@db_app.command()
def backup() -> None:
    """Back up queue.db now with SQLite's online backup API (safe while the runner works)."""
    from tunequeue.jobqueue.db import backup_db, open_db

    db = open_db()
    try:
        path = backup_db(db, "manual")
    finally:
        db.close()
    typer.echo(f"backup written: {path}")


@db_app.command()
def restore(
    backup: str = typer.Argument(None, help="Backup file or its name in HOME/backups (default: the newest)."),
) -> None:
    """Put a backup in place of queue.db; the replaced file is kept next to the backups."""
    from tunequeue.core.errors import UserError
    from tunequeue.jobqueue.db import resolve_backup, restore_backup
    from tunequeue.runner.daemon import running_pid

    pid = running_pid()
    if pid is not None:
        raise UserError(
            f"a runner (pid {pid}) uses the queue; stop it with `tunequeue runner stop`, then restore"
        )
    chosen = resolve_backup(backup)
    kept = restore_backup(chosen)
    typer.echo(f"restored queue.db from {chosen}")
    if kept is not None:
        typer.echo(f"the replaced queue.db is kept in {kept}")


def register(app: typer.Typer) -> None:
    """Add the `db` command group to the root app."""
    app.add_typer(db_app, name="db")
