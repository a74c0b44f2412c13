"""The job queue: SQLite schema and connection (`db`), job states and transitions (`jobs`, the only
writer of job state), metrics rows (`metrics`), and `submission`, the one path from a checked task to
a job row (submit, sweep, wizard, retry, demo)."""
