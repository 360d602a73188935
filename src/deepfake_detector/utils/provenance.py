"""Where an artifact came from: the git commit of the code that made it."""
from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(root: Path) -> dict[str, str | bool | None]:
    """The commit checked out in root and whether tracked files differ from it; None outside git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(changes) if changes is not None else None}
