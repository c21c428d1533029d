"""The reference of a served version: its training data, found by the DVC md5 its lineage recorded
(the manifest's ``data_md5``), never "whatever is checked out now".

Where it is looked for, in order: the DVC cache (``.dvc/cache/files/md5/XX/REST`` of DVC 3, and
the older ``.dvc/cache/XX/REST``), a local DVC remote (a folder named in ``.dvc/config``), the
checked-out file when its md5 is the recorded one, and last ``dvc`` itself reading the file at the
training commit (any remote DVC can reach). The bytes found are always checked against the md5.
"""

from __future__ import annotations

import configparser
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError


@dataclass(frozen=True)
class Reference:
    frame: pd.DataFrame
    source: str  # where the bytes came from (for the report)
    md5: str | None


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def cache_candidates(root: Path, md5: str) -> list[Path]:
    head, rest = md5[:2], md5[2:]
    return [root / ".dvc" / "cache" / "files" / "md5" / head / rest,
            root / ".dvc" / "cache" / head / rest]


def local_remotes(root: Path) -> list[Path]:
    """Folders of the local DVC remotes (``url`` without a scheme), default remote first."""
    parser = configparser.ConfigParser()
    for name in ("config", "config.local"):
        try:
            parser.read(root / ".dvc" / name, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
    default = parser.get("core", "remote", fallback=None) if parser.has_section("core") else None
    remotes = []
    for section in parser.sections():
        if not section.startswith("remote"):
            continue
        name = section.split('"')[1] if '"' in section else ""
        url = parser.get(section, "url", fallback="")
        if not url or "://" in url:
            continue
        folder = Path(url).expanduser()
        folder = folder if folder.is_absolute() else root / ".dvc" / folder
        if name == default:
            remotes.insert(0, folder)
        else:
            remotes.append(folder)
    return remotes


def _read_if(path: Path, md5: str) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if md5_of(data) == md5 else None


def reference_bytes(root: Path, relative: str, md5: str | None,
                    commit: str | None) -> tuple[bytes, str]:
    """The training data's bytes and where they were found."""
    checked_out = root / relative
    if md5 is None:  # the data was not versioned by DVC when the model was trained
        try:
            return checked_out.read_bytes(), f"{relative} (checked out; not versioned by DVC)"
        except OSError:
            raise DiagnosticError([Diagnostic(relative, code="monitor", message=(
                "the served version recorded no data md5 and the file is not checked out"))]) \
                from None
    for path in cache_candidates(root, md5):
        data = _read_if(path, md5)
        if data is not None:
            return data, f"DVC cache ({md5})"
    for remote in local_remotes(root):
        for path in (remote / "files" / "md5" / md5[:2] / md5[2:], remote / md5[:2] / md5[2:]):
            data = _read_if(path, md5)
            if data is not None:
                return data, f"DVC remote {remote} ({md5})"
    data = _read_if(checked_out, md5)
    if data is not None:
        return data, f"{relative} (checked out, md5 {md5})"
    problem = ""
    if commit:
        from mlops_gitops.data.versioning import read_at_revision

        try:
            data = read_at_revision(root, relative, commit)
        except DiagnosticError as exc:
            problem = exc.diagnostics[0].message
        else:
            if md5_of(data) == md5:
                return data, f"dvc at commit {commit[:12]} ({md5})"
            problem = f"at commit {commit[:12]} the file has another md5"
    raise DiagnosticError([Diagnostic(relative, code="monitor", message=(
        f"the training data of the served version (md5 {md5}) is not in the DVC cache, a local "
        f"remote or the checked-out file{'; ' + problem if problem else ''}"),
        hint="fetch it: 'dvc fetch' at the training commit, or 'dvc pull' from a remote that "
             "holds it")])


def load_reference(root: Path, relative: str, md5: str | None,
                   commit: str | None) -> Reference:
    data, source = reference_bytes(root, relative, md5, commit)
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, pd.errors.ParserError) as exc:
        raise DiagnosticError([Diagnostic(relative, code="monitor", message=(
            f"the training data ({source}) is not a readable CSV: {exc}"))]) from None
    return Reference(frame, source, md5)
