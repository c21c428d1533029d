"""Where a trained model came from: git commit and dirty flag, spec files and their hashes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def git_state(root: Path) -> tuple[str | None, bool]:
    """(commit, dirty) of the repository, or (None, False) outside git."""
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                    timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, False
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, bool(status)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
