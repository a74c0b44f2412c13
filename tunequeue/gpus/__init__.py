"""gpus package."""
