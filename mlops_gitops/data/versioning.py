"""Data versions from DVC: the md5 in a ``.dvc`` file (read without importing DVC), pulling
missing data, and reading a file as it was at a git revision."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.extras import require


@dataclass(frozen=True)
class DataVersion:
    path: str  # repository-relative data file
    md5: str | None  # None when the file is not tracked by DVC


def data_path(root: Path, relative: str, spec_file: str = "") -> Path:
    """The data file, refusing any path that leaves the repository (also through symlinks)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DiagnosticError([Diagnostic(spec_file or relative, path="spec.path", code="path",
                                          message=f"data path '{relative}' leaves the repository")])
    return path


def dvc_file(root: Path, relative: str) -> Path:
    return root / f"{relative}.dvc"


def pointer_md5(text: str) -> str:
    """The md5 recorded in the text of a ``.dvc`` file; ValueError when it has none."""
    try:
        return str(yaml.load(text, Loader=yaml.CSafeLoader)["outs"][0]["md5"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"no md5 in the DVC file ({type(exc).__name__}: {exc})") from None


def data_version(root: Path, relative: str) -> DataVersion:
    """The DVC md5 of a tracked file (< 1 ms: one small YAML read, no DVC import)."""
    pointer = dvc_file(root, relative)
    if not pointer.is_file():
        return DataVersion(relative, None)
    try:
        md5 = pointer_md5(pointer.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        problem = Diagnostic(str(pointer), code="dvc", message=f"unreadable DVC file: {exc}",
                             hint="regenerate it with 'dvc add'")
        raise DiagnosticError([problem]) from None
    return DataVersion(relative, str(md5))


def untracked_change(relative: str, spec_file: str = "") -> Diagnostic:
    return Diagnostic(spec_file or relative, path="spec.path", code="dvc-modified",
                      message=f"'{relative}' differs from the version recorded in "
                              f"{relative}.dvc",
                      hint=f"record the new data with 'dvc add {relative}' (and commit the .dvc "
                           f"file), or restore the recorded one with 'dvc checkout {relative}'")


# what S3 (botocore, s3fs) and other remotes say when credentials are missing or wrong
_CREDENTIAL_ERRORS = ("credentials", "Credentials", "AccessDenied", "Access Denied",
                      "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden",
                      "401", "Unauthorized")


def _credential_hint(result: subprocess.CompletedProcess) -> str:
    """What to do when DVC's output says the remote wanted credentials ("" when it does not)."""
    if any(mark in result.stderr + result.stdout for mark in _CREDENTIAL_ERRORS):
        return ("the DVC remote refused the request or found no credentials: for S3 set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or "
                "'dvc remote modify --local REMOTE access_key_id/secret_access_key'; "
                "never commit them in .dvc/config")
    return ""


def _pull_hint(result: subprocess.CompletedProcess) -> str:
    return _credential_hint(result) or ("check the DVC remote ('dvc remote list') is "
                                        "reachable and holds the data ('dvc push' from a "
                                        "machine that has it)")


def run_dvc(root: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``dvc ARGS`` in ``root``; a run over ``timeout`` seconds is killed and returned as a
    failure (exit code 124, like timeout(1)) with the reason in its stderr."""
    require("dvc")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    cmd = [sys.executable, "-m", "dvc", *args]
    try:
        return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"ERROR: no answer within {timeout:g} s")


def dvc_reason(result: subprocess.CompletedProcess) -> str:
    """DVC's own explanation of a failure in one line: its ERROR and WARNING text, without the
    lists of hashes and links that follow them."""
    lines = []
    for line in (result.stderr + "\n" + result.stdout).splitlines():
        line = line.strip()
        if not line or line.startswith(("md5:", "<http")) or line == "Everything is up to date.":
            continue
        lines.append(line.removeprefix("ERROR: ").removeprefix("WARNING: "))
    return " ".join(lines) or f"exit code {result.returncode}"


def _errors_only(result: subprocess.CompletedProcess) -> str:
    """:func:`dvc_reason` from DVC's stderr alone when it has any: its stdout is progress
    ("Importing 'x' -> 'y'") once --quiet is off."""
    if result.stderr.strip():
        return dvc_reason(subprocess.CompletedProcess(result.args, result.returncode, "",
                                                      result.stderr))
    return dvc_reason(result)


def default_remote(root: Path) -> str | None:
    """The URL of the default DVC remote as the repository's own config files say (``.dvc/config``
    and ``.dvc/config.local``); a relative local path is made absolute. None when there is none."""
    from configobj import ConfigObj, ConfigObjError  # DVC's own config reader

    merged: dict = {}
    for name in ("config", "config.local"):
        path = root / ".dvc" / name
        try:
            sections = ConfigObj(str(path), encoding="utf-8") if path.is_file() else {}
        except (ConfigObjError, OSError):
            return None
        for section, values in sections.items():
            merged.setdefault(section.replace("'", "").replace('"', ""), {}).update(values)
    remote = merged.get("core", {}).get("remote")
    url = merged.get(f"remote {remote}", {}).get("url") if remote else None
    if not url:
        return None
    if "://" in url and not url.startswith("file://"):
        return url
    return str((root / ".dvc" / url.removeprefix("file://")).resolve())  # absolute stays absolute


def is_import(root: Path, relative: str) -> bool:
    """Whether the data's ``.dvc`` file is an import (``dvc import`` / ``dvc import-url``): it
    names the source it was fetched from, so ``dvc update`` can fetch a newer version."""
    try:
        pointer = yaml.load(dvc_file(root, relative).read_text(encoding="utf-8"),
                            Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(pointer, dict) and bool(pointer.get("deps"))


DVC_NETWORK_TIMEOUT_S = 600  # a source or remote that hangs must not hold a scheduled job


@dataclass(frozen=True)
class ImportUpdate:
    before: str | None  # md5 before ``dvc update``
    after: str | None  # md5 after (the same when the source has not changed)
    problem: str = ""  # why it was not updated, or why the new data was not pushed


def update_import(root: Path, relative: str, cache: Path | None = None) -> ImportUpdate:
    """``dvc update`` of an imported data file, then ``dvc push`` of the new version to the
    default remote (so a CI runner can pull it). ``cache``: the DVC cache to use (a temporary
    worktree shares its repository's). Failures are returned, not raised: the caller goes on
    with the recorded version."""
    before = data_version(root, relative).md5
    if cache is not None:
        set_cache = run_dvc(root, "config", "--local", "cache.dir", str(cache))
        if set_cache.returncode != 0:
            return ImportUpdate(before, before, f"dvc config failed: {dvc_reason(set_cache)}")
    # never --quiet: it hides DVC's ERROR line, the reason a user can act on
    updated = run_dvc(root, "update", f"{relative}.dvc", timeout=DVC_NETWORK_TIMEOUT_S)
    if updated.returncode != 0:
        return ImportUpdate(before, before, f"'dvc update' failed: {_errors_only(updated)}")
    after = data_version(root, relative).md5
    if after == before:
        return ImportUpdate(before, after)
    if default_remote(root) is None:
        return ImportUpdate(before, after, "no default DVC remote: the new version is only in "
                            "this machine's DVC cache ('dvc remote add -d', then 'dvc push')")
    pushed = run_dvc(root, "push", f"{relative}.dvc", timeout=DVC_NETWORK_TIMEOUT_S)
    if pushed.returncode != 0:
        hint = _credential_hint(pushed)
        return ImportUpdate(before, after, f"'dvc push' failed: {_errors_only(pushed)}; "
                            + (f"{hint}; " if hint else "")
                            + "push it before the pull request's pipeline runs")
    return ImportUpdate(before, after)


def _missing_local_remote(root: Path, relative: str, spec_file: str) -> Diagnostic | None:
    """A diagnostic when the default remote is a local folder that does not exist (yet)."""
    url = default_remote(root)
    if url is None or "://" in url:
        return None
    folder = Path(url)
    if folder.exists():
        return None
    shown = folder.relative_to(root.resolve()) if folder.is_relative_to(root.resolve()) else folder
    return Diagnostic(
        spec_file or relative, path="spec.path", code="dvc-remote-missing",
        message=f"'{relative}' is missing and the local DVC remote '{shown}' does not exist yet",
        hint="in this repository's example project run 'make data' (it recreates the data and "
             "fills the remote); elsewhere run 'dvc push' where the data is, or point the "
             "remote at where it lives ('dvc remote modify')")


def ensure_present(root: Path, relative: str, spec_file: str = "") -> Path:
    """Return the data file, pulling it from the DVC remote when a fresh clone lacks it."""
    path = data_path(root, relative, spec_file)
    if path.is_file():
        return path
    if not dvc_file(root, relative).is_file():
        raise DiagnosticError([Diagnostic(spec_file or relative, path="spec.path", code="data",
                                          message=f"data file '{relative}' does not exist and is "
                                          "not tracked by DVC",
                                          hint=f"create it, then 'dvc add {relative}'")])
    result = run_dvc(root, "pull", relative)
    if result.returncode != 0 or not path.is_file():
        missing_remote = _missing_local_remote(root, relative, spec_file)
        if missing_remote is not None:
            raise DiagnosticError([missing_remote])
        raise DiagnosticError([Diagnostic(
            spec_file or relative, path="spec.path", code="dvc-pull",
            message=f"'{relative}' is missing and 'dvc pull' failed: {dvc_reason(result)}",
            hint=_pull_hint(result))])
    return path


def read_at_revision(root: Path, relative: str, rev: str) -> bytes:
    """The bytes of a DVC-tracked file as of git revision ``rev`` (from the cache or remote)."""
    from mlops_gitops.gitref import checked_revision

    checked_revision(rev)
    import dvc.api
    from dvc.exceptions import DvcException
    from scmrepo.exceptions import SCMError

    try:
        return dvc.api.read(relative, repo=str(root), rev=rev, mode="rb")
    except (DvcException, SCMError, FileNotFoundError) as exc:
        raise DiagnosticError([Diagnostic(relative, code="dvc", message=f"cannot read "
                                          f"'{relative}' at revision '{rev}': {exc}",
                                          hint="is the revision right, and was the data pushed "
                                          "to the DVC remote?")]) from None
