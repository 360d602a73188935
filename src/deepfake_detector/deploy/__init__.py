"""Deployment helpers: getting a trained, verified model export to the machine that builds the image."""
