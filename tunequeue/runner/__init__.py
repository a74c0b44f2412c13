"""The runner: the daemon that starts queued jobs and supervises them until they end.

- `daemon`: one runner per home (lock file holding the runner's identity line, `running_pid` probe
  without locking), signal flags, `Runner.tick` (the backend's phases: reap → adopt → schedule →
  launch → ingest, GPUs sampled in between) and the serve loop; start/stop/status.
- `backends`: where jobs run. `backends.local` supervises processes on this machine;
  `backends.slurm` (options, batch script, Slurm client, backend) submits them to a Slurm cluster.
- `scheduler`: pure function (queued jobs, GPU states) → which job starts on which GPUs, GPU sharing
  and backfill included.
- `observed`: what the runner has measured (GPU utilisation, job ETAs, usual run times), summarised as
  the scheduler's inputs.
- `launch`: the command, environment and Popen of a job's wrapped training process.
- `wrapper`: ``python -m tunequeue.runner.wrapper``, the parent of every training process; writes the
  process record before the trainer starts and exit.json when it ends, even with no runner running.
- `procs`: process identity (pid + start ticks + boot id, never wall-clock times), liveness and
  process groups (psutil), RUN_DIR/process.json.
- `ingest`: trainer_log.jsonl → metrics rows.
- `settings`: the ``runner:`` block of settings.yaml and TUNEQUEUE_* overrides (`RunnerSettings`).
- `interactive`: the device an interactive chat session runs on (a free GPU the scheduler leaves alone,
  or the CPU).
"""
