"""``python -m tunequeue.train RUN_DIR/task.yaml``: the training process the runner launches."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the task file named on the command line; returns the exit code (0, 2, 3 or 1)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m tunequeue.train RUN_DIR/task.yaml", file=sys.stderr)
        return 2
    from tunequeue.core.private_files import restrict_umask
    from tunequeue.train.runtime import run_task_file

    restrict_umask()  # checkpoints, adapters and logs of a run are private to the user

    return run_task_file(args[0])


if __name__ == "__main__":
    sys.exit(main())
