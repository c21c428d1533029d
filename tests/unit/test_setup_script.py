"""`make setup` (scripts/setup-venv): uv is pointed at the package index pip is configured with,
and installs from constraints.txt. A stand-in `uv` on PATH records how it is called."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .support import REPO

FAKE_UV = """#!/bin/sh
echo "args: $*"
env | grep -E '^(UV_[A-Z_]+|SSL_CERT_FILE)=' | sort
"""


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3 on PATH")
def test_uv_gets_pip_s_index_and_the_constraints(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text(FAKE_UV)
    (bin_dir / "uv").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "SSL_CERT_FILE"))}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", PIP_INDEX_URL="https://mirror.invalid/simple",
               PIP_EXTRA_INDEX_URL="file:///opt/a/simple file:///opt/b/simple",
               PIP_CERT="/etc/ssl/certs/ca-certificates.crt")
    venv = tmp_path / "venv"
    result = subprocess.run(["sh", str(REPO / "scripts" / "setup-venv"), str(venv)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"args: pip install --quiet --python {venv}/bin/python -c constraints.txt " \
           "-e .[dev]" in lines
    assert "UV_DEFAULT_INDEX=https://mirror.invalid/simple" in lines
    assert "UV_INDEX=file:///opt/a/simple file:///opt/b/simple" in lines
    assert "UV_INDEX_STRATEGY=unsafe-best-match" in lines  # pip's rule: best of all indexes
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in lines
    assert (venv / "bin" / "python").exists()
