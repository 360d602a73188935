"""Where the ablation's files live by default, relative to the repository root."""
from pathlib import Path

GRID_FILE = Path("config/ablation.yaml")        # the axes, levels and rows
RECORDS_DIR = Path("artifacts/ablation")        # one <row>.json per row, its export and its DVC log
DOC_FILE = Path("docs/generalization.md")       # the page whose ablation markers hold the table
