"""Task model, presets, validation, compatibility and estimates. Imports neither torch nor textual.

Where each concern lives:

- `spec` — TaskSpec and its parameter groups; `rules` — field and cross-field rules (a rule table);
- `validate` — the one preflight that validate, submit, train, the wizard and the training process run;
- `models` — the one model resolver (bundled, local, hub cache); `dataset_info` — the one
  dataset_info.json reader; `yaml_files` — safe parsing of user YAML/JSON (aliases, depth, NUL, size);
- `task_files` — the one task YAML writer and the reader of a stored task back into a TaskSpec;
- `compat` — LLaMA-Factory and Firefly import/export; `presets`, `estimate`, `job_kinds`, `paths`,
  `settings_file`, `errors`;
- `i18n` — the user's language and the lookup of every text shown to users. The texts themselves, in
  English and Chinese, live in the catalog ``tunequeue/locales/en.yaml`` and ``zh.yaml`` (parameter
  help, group titles, validation messages, screen texts); no module keeps a table of texts.
"""
