"""Stage entry points, one per DVC stage, sharing one runner."""
