"""The job queue: one SQLite database per home, and the only code that writes it.

- `db`: connection settings (WAL, ``BEGIN IMMEDIATE`` write transactions), schema and migrations,
  backups and restore, and the locked / damaged / disk-full faults as one-line errors.
- `jobs`: the `Job` record, job states and their transitions, events, dependencies (``after``),
  priorities and holds; the only writer of a job's state.
- `metrics`: training metrics rows, GPU samples and the ingest offsets of each job's log.
- `submission`: the one path from a checked `TaskSpec` to a job row (submit, sweep, the wizard's new
  and edit, retry, demo): every derived column (kind, GPUs, VRAM estimate, sharing) is computed there.
"""
