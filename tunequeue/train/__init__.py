"""The training process: ``python -m tunequeue.train RUN_DIR/task.yaml``, launched by the runner (or by
``tunequeue train`` in the foreground). The only package that imports torch, transformers, peft and
trl; it depends on `tunequeue.core` alone.

- `__main__`: the entry point; `runtime`: task file, Trainer arguments, resume, final save, exit codes.
- `workflows`: one straight-line workflow per stage (`pt`, `sft` over `causal_lm`, `rm`, `dpo`, `kto`,
  `ppo`); `rlhf` holds what the preference stages share.
- `data`: dataset_info.json lookup (`loader`) → format conversion (`converter`) → templating and
  tokenizing (`processor`) → batches (`collator`).
- `templates` and `tool_formats`: chat templates and tool-call text, token for token.
- `model`: tokenizer and model loading, precision, quantization, LoRA/OFT/freeze/LLaMA Pro setup;
  `llama_pro`: block expansion; `optimizers`: GaLore, APOLLO, BAdam, Muon, Adam-mini; `losses`.
- `callbacks`: the live metrics file and graceful cancellation; `checkpoints`: atomic checkpoints.
- `evaluate`: eval and predict jobs; `metrics_text`: BLEU and ROUGE of generated answers;
  `export`: merge adapters into a standalone model; `inference`: a model loaded for inference.
- `chat`: terminal chat with a local model (``tunequeue chat``).
- `sidecar`: a child process the TUI talks to for dataset previews and chat, so the TUI process never
  imports torch (its client is `tunequeue.tui.sidecar`).
- `assets`: the bundled tiny demo model and demo datasets.
"""
