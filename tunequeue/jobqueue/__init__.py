"""jobqueue package."""
