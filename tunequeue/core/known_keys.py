"""Key names that LLaMA-Factory or Transformers' training arguments accept, as plain data.

Import uses these to tell a key that exists elsewhere but that tunequeue does not use (kept in
``extra`` with a warning) from a typo (an error naming the closest key). Stored as frozensets so
reading a task never imports transformers.

``HF_TRAINING_ARGS``: the fields of ``transformers.Seq2SeqTrainingArguments`` 5.23, plus older names
still found in LLaMA-Factory YAML written for Transformers 4.x (``warmup_ratio``, ``logging_dir``,
``evaluation_strategy``…). ``LF_ARGS``: the fields of LLaMA-Factory's model, data, finetuning,
generating, evaluation and training argument dataclasses (``src/llamafactory/hparams``).
"""

from __future__ import annotations

# The init fields of ``transformers.TrainingArguments`` 5.23: what a task may pass straight through to
# the Trainer (tests/core/test_extra_keys.py checks the list against the installed transformers).
TRAINING_ARGUMENTS_FIELDS: frozenset[str] = frozenset({
    "accelerator_config", "activation_checkpointing", "activation_checkpointing_kwargs", "adam_beta1",
    "adam_beta2", "adam_epsilon", "auto_find_batch_size", "average_tokens_across_devices",
    "batch_eval_metrics", "bf16", "bf16_full_eval", "data_seed", "dataloader_drop_last",
    "dataloader_in_order", "dataloader_multiprocessing_context", "dataloader_num_workers",
    "dataloader_persistent_workers", "dataloader_pin_memory", "dataloader_prefetch_factor", "ddp_backend",
    "ddp_broadcast_buffers", "ddp_bucket_cap_mb", "ddp_find_unused_parameters", "ddp_static_graph",
    "ddp_timeout", "debug", "deepspeed", "disable_tqdm", "do_eval", "do_predict", "do_train",
    "enable_jit_checkpoint", "eval_accumulation_steps", "eval_delay", "eval_do_concat_batches",
    "eval_on_start", "eval_steps", "eval_strategy", "eval_use_gather_object", "fp16", "fp16_full_eval",
    "fsdp", "fsdp_config", "full_determinism", "gradient_accumulation_steps", "gradient_checkpointing",
    "gradient_checkpointing_kwargs", "greater_is_better", "hub_always_push", "hub_model_id",
    "hub_private_repo", "hub_revision", "hub_strategy", "hub_token", "ignore_data_skip",
    "include_for_metrics", "include_num_input_tokens_seen", "label_names", "label_smoothing_factor",
    "learning_rate", "length_column_name", "liger_kernel_config", "load_best_model_at_end", "local_rank",
    "log_level", "log_level_replica", "log_on_each_node", "logging_first_step", "logging_nan_inf_filter",
    "logging_steps", "logging_strategy", "lr_scheduler_kwargs", "lr_scheduler_type", "max_grad_norm",
    "max_steps", "metric_for_best_model", "neftune_noise_alpha", "num_train_epochs", "optim", "optim_args",
    "optim_target_modules", "output_dir", "parallelism_config", "per_device_eval_batch_size",
    "per_device_train_batch_size", "prediction_loss_only", "project", "push_to_hub", "remove_unused_columns",
    "report_to", "restore_callback_states_from_checkpoint", "resume_from_checkpoint", "run_name",
    "save_on_each_node", "save_only_model", "save_steps", "save_strategy", "save_total_limit", "seed",
    "skip_memory_metrics", "tf32", "torch_compile", "torch_compile_backend", "torch_compile_mode",
    "torch_empty_cache_steps", "trackio_bucket_id", "trackio_space_id", "trackio_static_space_id",
    "train_sampling_strategy", "use_cache", "use_cpu", "use_liger_kernel", "warmup_steps", "weight_decay",
})

HF_TRAINING_ARGS: frozenset[str] = frozenset({
    "accelerator_config", "activation_checkpointing", "activation_checkpointing_kwargs", "adam_beta1",
    "adam_beta2", "adam_epsilon", "auto_find_batch_size", "average_tokens_across_devices",
    "batch_eval_metrics", "bf16", "bf16_full_eval", "data_seed", "dataloader_drop_last",
    "dataloader_in_order", "dataloader_multiprocessing_context", "dataloader_num_workers",
    "dataloader_persistent_workers", "dataloader_pin_memory", "dataloader_prefetch_factor", "ddp_backend",
    "ddp_broadcast_buffers", "ddp_bucket_cap_mb", "ddp_find_unused_parameters", "ddp_static_graph",
    "ddp_timeout", "debug", "deepspeed", "disable_tqdm", "do_eval", "do_predict", "do_train",
    "enable_jit_checkpoint", "eval_accumulation_steps", "eval_delay", "eval_do_concat_batches",
    "eval_on_start", "eval_steps", "eval_strategy", "eval_use_gather_object", "fp16", "fp16_full_eval",
    "fsdp", "fsdp_config", "full_determinism", "generation_config", "generation_max_length",
    "generation_num_beams", "gradient_accumulation_steps", "gradient_checkpointing",
    "gradient_checkpointing_kwargs", "greater_is_better", "hub_always_push", "hub_model_id",
    "hub_private_repo", "hub_revision", "hub_strategy", "hub_token", "ignore_data_skip",
    "include_for_metrics", "include_num_input_tokens_seen", "label_names", "label_smoothing_factor",
    "learning_rate", "length_column_name", "liger_kernel_config", "load_best_model_at_end", "local_rank",
    "log_level", "log_level_replica", "log_on_each_node", "logging_first_step", "logging_nan_inf_filter",
    "logging_steps", "logging_strategy", "lr_scheduler_kwargs", "lr_scheduler_type", "max_grad_norm",
    "max_steps", "metric_for_best_model", "neftune_noise_alpha", "num_train_epochs", "optim", "optim_args",
    "optim_target_modules", "output_dir", "parallelism_config", "per_device_eval_batch_size",
    "per_device_train_batch_size", "predict_with_generate", "prediction_loss_only", "project",
    "push_to_hub", "remove_unused_columns", "report_to", "restore_callback_states_from_checkpoint",
    "resume_from_checkpoint", "run_name", "save_on_each_node", "save_only_model", "save_steps",
    "save_strategy", "save_total_limit", "seed", "skip_memory_metrics", "sortish_sampler", "tf32",
    "torch_compile", "torch_compile_backend", "torch_compile_mode", "torch_empty_cache_steps",
    "trackio_bucket_id", "trackio_space_id", "trackio_static_space_id", "train_sampling_strategy",
    "use_cache", "use_cpu", "use_liger_kernel", "warmup_steps", "weight_decay",
    # Transformers 4.x names that LLaMA-Factory YAML files still carry
    "warmup_ratio", "logging_dir", "evaluation_strategy", "overwrite_output_dir", "save_safetensors",
    "per_gpu_train_batch_size", "per_gpu_eval_batch_size", "fp16_opt_level", "fp16_backend",
    "half_precision_backend", "no_cuda", "use_mps_device", "use_ipex", "jit_mode_eval", "past_index",
    "tpu_num_cores", "ray_scope", "dispatch_batches", "split_batches", "include_inputs_for_metrics",
    "include_tokens_per_second", "push_to_hub_model_id", "push_to_hub_organization", "push_to_hub_token",
    "mp_parameters", "group_by_length", "adafactor", "torchdynamo", "fsdp_min_num_params",
    "fsdp_transformer_layer_cls_to_wrap", "use_legacy_prediction_loop",
})

LF_ARGS: frozenset[str] = frozenset({
    # model_args: base model, quantization, processor, export, vllm/sglang/ktransformers
    "model_name_or_path", "adapter_name_or_path", "adapter_folder", "cache_dir", "use_fast_tokenizer",
    "resize_vocab", "split_special_tokens", "add_tokens", "add_special_tokens", "new_special_tokens_config",
    "init_special_tokens", "model_revision", "low_cpu_mem_usage", "rope_scaling", "flash_attn",
    "shift_attn", "mixture_of_depths", "use_unsloth", "use_unsloth_gc", "enable_liger_kernel",
    "moe_aux_loss_coef", "disable_gradient_checkpointing", "use_reentrant_gc", "upcast_layernorm",
    "upcast_lmhead_output", "train_from_scratch", "infer_backend", "offload_folder", "use_kv_cache",
    "use_v1_kernels", "infer_dtype", "hf_hub_token", "ms_hub_token", "om_hub_token", "print_param_status",
    "trust_remote_code", "quantization_method", "quantization_bit", "quantization_type",
    "double_quantization", "quantization_device_map", "fp8", "fp8_backend",
    "fp8_enable_fsdp_float8_all_gather", "image_max_pixels", "image_min_pixels", "image_do_pan_and_scan",
    "crop_to_patches", "video_max_pixels", "video_min_pixels", "video_fps", "video_maxlen",
    "use_audio_in_video", "audio_sampling_rate", "export_dir", "export_size", "export_device",
    "export_quantization_bit", "export_quantization_dataset", "export_quantization_nsamples",
    "export_quantization_maxlen", "export_legacy_format", "export_hub_model_id", "vllm_maxlen",
    "vllm_gpu_util", "vllm_enforce_eager", "vllm_max_lora_rank", "vllm_config", "sglang_maxlen",
    "sglang_mem_fraction", "sglang_tp_size", "sglang_config", "sglang_lora_backend", "use_kt",
    "kt_optimize_rule", "cpu_infer", "chunk_size", "mode", "kt_maxlen", "kt_use_cuda_graph", "kt_mode",
    "kt_force_think", "image_resolution", "video_resolution",
    # data_args
    "template", "dataset", "eval_dataset", "dataset_dir", "media_dir", "cutoff_len", "train_on_prompt",
    "mask_history", "streaming", "buffer_size", "mix_strategy", "interleave_probs", "overwrite_cache",
    "preprocessing_batch_size", "preprocessing_num_workers", "max_samples", "eval_num_beams",
    "ignore_pad_token_for_loss", "val_size", "eval_on_each_dataset", "packing", "neat_packing",
    "tool_format", "tokenized_path", "default_system", "enable_thinking",
    # finetuning_args: freeze, lora, oft, rlhf, galore, apollo, badam, swanlab, general
    "freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules", "additional_target",
    "lora_alpha", "lora_dropout", "lora_rank", "lora_target", "loraplus_lr_ratio", "loraplus_lr_embedding",
    "use_rslora", "use_dora", "pissa_init", "pissa_iter", "pissa_convert", "create_new_adapter",
    "module_dropout", "oft_rank", "oft_block_size", "oft_target", "pref_beta", "pref_ftx",
    "pref_bco_weight", "pref_loss", "dpo_label_smoothing", "kto_chosen_weight", "kto_rejected_weight",
    "simpo_gamma", "ppo_buffer_size", "ppo_epochs", "ppo_score_norm", "ppo_target", "ppo_whiten_rewards",
    "ref_model", "ref_model_adapters", "ref_model_quantization_bit", "reward_model",
    "reward_model_adapters", "reward_model_quantization_bit", "reward_model_type", "ld_alpha",
    "use_galore", "galore_target", "galore_rank", "galore_update_interval", "galore_scale",
    "galore_proj_type", "galore_layerwise", "use_apollo", "apollo_target", "apollo_rank",
    "apollo_update_interval", "apollo_scale", "apollo_proj", "apollo_proj_type", "apollo_scale_type",
    "apollo_layerwise", "apollo_scale_front", "use_badam", "badam_mode", "badam_start_block",
    "badam_switch_mode", "badam_switch_interval", "badam_update_ratio", "badam_mask_mode",
    "badam_verbose", "use_swanlab", "swanlab_project", "swanlab_workspace", "swanlab_run_name",
    "swanlab_mode", "swanlab_api_key", "swanlab_logdir", "swanlab_lark_webhook_url",
    "swanlab_lark_secret", "pure_bf16", "stage", "finetuning_type", "use_llama_pro", "use_adam_mini",
    "use_mca", "use_muon", "use_dft_loss", "use_asft_loss", "use_eaft_loss", "freeze_vision_tower",
    "freeze_multi_modal_projector",
    "freeze_language_model", "compute_accuracy", "disable_shuffling", "early_stopping_steps", "plot_loss",
    "include_effective_tokens_per_second", "train_mm_proj_only", "visual_inputs",
    # generating_args
    "do_sample", "temperature", "top_p", "top_k", "num_beams", "max_length", "max_new_tokens",
    "repetition_penalty", "length_penalty", "skip_special_tokens",
    # evaluation_args (MMLU-style eval)
    "task", "task_dir", "batch_size", "lang", "n_shot", "save_dir", "download_mode",
    # training_args: ray
    "ray_run_name", "ray_storage_path", "ray_storage_filesystem", "ray_num_workers",
    "resources_per_worker", "placement_strategy", "ray_init_kwargs",
})

KNOWN_ELSEWHERE: frozenset[str] = TRAINING_ARGUMENTS_FIELDS | HF_TRAINING_ARGS | LF_ARGS
