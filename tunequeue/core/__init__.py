"""Task model, presets, validation, compatibility and estimates. Imports neither torch nor textual.

Where each concern lives:

- `spec` — TaskSpec and its parameter groups; `rules` — field and cross-field rules (a rule table);
- `validate` — the one preflight that validate, submit, train, the wizard and the training process run;
- `models` — the one model resolver (bundled, local, hub cache); `dataset_info` — the one
  dataset_info.json reader; `yaml_files` — safe parsing of user YAML/JSON (aliases, depth, NUL, size);
- `model_catalog`, `dataset_catalog` — the models and datasets the wizard's pickers offer;
- `task_files` — the one task YAML writer and the reader of a stored task back into a TaskSpec;
- `compat` — LLaMA-Factory and Firefly import/export; `known_keys`, `extra_keys` — keys kept in
  ``extra``; `slurm_task` — a task's own Slurm options;
- `estimate` — VRAM and time estimates; `job_kinds` — train, eval, predict or export;
- `presets`; `paths` — a home's files; `private_files` — creating and opening them privately;
  `disk_full` — recognising a full disk; `settings_file` and `settings_models` — settings.yaml;
- `i18n` — the user's language and the texts of ``tunequeue/locales/en.yaml`` and ``zh.yaml``;
  `errors` — `UserError`, the one-line mistake a user can fix.
"""
