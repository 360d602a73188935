"""Data: sources, archives, layouts, demo data, image checks, duplicates, splitting, validation, datasets."""
