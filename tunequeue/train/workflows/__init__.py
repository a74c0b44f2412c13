"""train/workflows package."""
