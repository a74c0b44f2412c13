"""The Textual interface (``tunequeue ui``). Imports no torch: training-side work goes to a sidecar.

- `app` — the app: the queue screen at home, the other screens on top; `screens/` — `queue`,
  `dashboard`, `job`, `gpus`, `wizard`, `presets`, `chat`, `help`; `widgets/` — `fields`, `pickers`,
  `gpu_pane`, `loss_chart`, `log_tail`, `sparkline`, `row_table`, `key_footer`; `dialogs` —
  confirmation and prompt.
- `data` — what the screens show, read from the queue and run files; `cluster` — Slurm jobs' details;
  `reasons` — why a job waits; `polling` — background reads of the queue; `metric_history` — a run's
  metrics read incrementally for the dashboard; `formatting`; `messages`.
- `sidecar` — the client of `tunequeue.train.sidecar` (dataset previews and chat).
- `text` — the TUI's lookup of texts in the catalog ``tunequeue/locales/en.yaml`` and ``zh.yaml``;
  `keys` — keys typed in a burst keep their order and field.

A new text is a new key in both catalog files, never a table in a module.
"""
