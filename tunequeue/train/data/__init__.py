"""train/data package."""
