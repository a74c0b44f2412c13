"""Task model, presets, validation, compatibility and estimates. Imports neither torch nor textual."""
