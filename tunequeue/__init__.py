"""tunequeue: queue, run and watch LLM fine-tuning jobs on headless NVIDIA GPU servers from the terminal."""

__version__ = "0.1.0"
