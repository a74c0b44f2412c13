"""tunequeue: queue, run and watch LLM fine-tuning jobs on headless NVIDIA GPU servers from the terminal.

Where each concern lives (each package's own docstring lists its modules):

- `tunequeue.core`: the task model, its validation (preflight), presets, the model and dataset
  resolvers, compatibility with LLaMA-Factory and Firefly files, the VRAM estimate, paths of a home,
  settings.yaml and the user's language. Imports neither torch nor textual.
- `tunequeue.locales`: ``en.yaml`` and ``zh.yaml``, the one catalog of texts shown to users, read by
  `tunequeue.core.i18n`.
- `tunequeue.jobqueue`: the SQLite queue: schema, job states and transitions, metrics, submission.
- `tunequeue.gpus`: the machine's GPUs (NVML or simulated) and the processes that use them.
- `tunequeue.runner`: the daemon that schedules queued jobs onto GPUs (or Slurm), launches and
  supervises them, and the wrapper process around each training run.
- `tunequeue.train`: the training process (``python -m tunequeue.train``) and its stages, data
  pipeline, chat templates, evaluation, export and chat; the only package that imports torch.
- `tunequeue.tui`: the Textual interface (``tunequeue ui``): queue, dashboards, GPUs, wizard, presets.
- `tunequeue.cli`: the ``tunequeue`` command line over all of the above.
- `tunequeue.presets` and `tunequeue.data`: the bundled presets, the tiny demo model and demo datasets.

Dependencies point one way: cli/tui → core/jobqueue/runner → gpus; train depends on core only
(tests/architecture checks it).
"""

__version__ = "0.1.0"
