"""The apply lock of one environment, held in the registry itself (like Terraform's state lock).

The lock is a registered model ``mlops-gitops-lock.PROJECT.ENV`` created atomically; its tags
name the holder (who, host, pid, since), a public lock id (what ``force-unlock`` takes) and a
random token only the holder knows. Releasing reads the lock and deletes it only when the token
is still its own: an apply whose lock was force-unlocked and taken by another never deletes the
other's lock.
"""

from __future__ import annotations

import datetime
import getpass
import logging
import os
import secrets
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.registry.ports import Registry, RegistryWriter

LOCK_PREFIX = "mlops-gitops-lock"
TAG_ID, TAG_TOKEN = "mlops.lock.id", "mlops.lock.token"
TAG_WHO, TAG_HOST, TAG_PID, TAG_SINCE = ("mlops.lock.who", "mlops.lock.host", "mlops.lock.pid",
                                         "mlops.lock.since")

log = logging.getLogger(__name__)


def lock_name(project: str, env: str) -> str:
    """The lock is a registered model of this name (one per project and environment)."""
    return f"{LOCK_PREFIX}.{project}.{env}"


def actor() -> str:
    """Who applies: the CI actor when there is one, else the local user."""
    for variable in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock (the public part of its tags; never the token)."""

    id: str
    holder: str
    host: str
    pid: str
    since: str

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> LockInfo:
        return cls(tags.get(TAG_ID, "?"), tags.get(TAG_WHO, "?"), tags.get(TAG_HOST, "?"),
                   tags.get(TAG_PID, "?"), tags.get(TAG_SINCE, "?"))

    def describe(self) -> str:
        return (f"{self.holder} on {self.host} (pid {self.pid}) since {self.since}, "
                f"lock id {self.id}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_lock_name(registered_name: str, fingerprint: str) -> str:
    """The lock serializing the registration of one fingerprint of one model."""
    return f"{LOCK_PREFIX}.train.{registered_name}.{fingerprint[:16]}"


@dataclass
class Lock:
    """Context manager holding the apply lock of one environment (or, with ``resource``,
    another named lock, e.g. the registration of one fingerprint by ``train``)."""

    registry: RegistryWriter
    project: str
    env: str
    timeout_s: float = 0.0
    resource: str | None = None
    held: bool = field(default=False, init=False)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16], init=False)
    token: str = field(default_factory=lambda: secrets.token_hex(16), init=False, repr=False)

    @property
    def name(self) -> str:
        return self.resource or lock_name(self.project, self.env)

    def _refusal(self, info: LockInfo) -> DiagnosticError:
        if self.resource is not None:
            return DiagnosticError([Diagnostic(
                self.resource, code="locked", message=f"another train holds the lock "
                f"'{self.resource}': {info.describe()}",
                hint=f"if it died, delete the registered model '{self.resource}' (an "
                     "mlops-gitops lock, no versions) and train again")])
        return DiagnosticError([Diagnostic(
            f"environment {self.env}", code="locked",
            message=f"another apply holds the lock of environment '{self.env}': "
                    f"{info.describe()}",
            hint=f"wait for it (--lock-timeout SECONDS), or if it died: "
                 f"mlops-gitops force-unlock --env {self.env} {info.id}")])

    def __enter__(self) -> Lock:
        holder = {TAG_WHO: actor(), TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid()),
                  TAG_SINCE: now_iso(), TAG_ID: self.id, TAG_TOKEN: self.token}
        deadline = time.monotonic() + self.timeout_s
        while True:
            current = self.registry.acquire_lock(self.name, holder)
            if current is None:
                self.held = True
                return self
            if time.monotonic() >= deadline:
                raise self._refusal(LockInfo.from_tags(current))
            time.sleep(1.0)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Release the lock if it is still ours. A failed release never hides the error that
        ended the block: it is attached to it as a second diagnostic (or logged)."""
        if not self.held:
            return
        self.held = False
        try:
            released = self.registry.release_lock(self.name, TAG_TOKEN, self.token)
        except DiagnosticError as failure:
            what = f"environment '{self.env}'" if self.resource is None else \
                f"'{self.resource}'"
            problem = Diagnostic(
                f"environment {self.env}" if self.resource is None else self.resource,
                code="lock-release",
                message=f"the lock of {what} could not be released: "
                        f"{failure.diagnostics[0].message}",
                hint=f"once the registry answers: mlops-gitops force-unlock --env {self.env} "
                     f"{self.id}" if self.resource is None else
                     f"once the registry answers, delete the registered model "
                     f"'{self.resource}' (an mlops-gitops lock, no versions)")
            if isinstance(exc, DiagnosticError):
                exc.diagnostics.append(problem)
            elif exc is not None:
                log.warning("%s (%s)", problem.message, problem.hint)
                exc.add_note(f"{problem.message}\n    hint: {problem.hint}")
            else:
                raise DiagnosticError([problem]) from None
            return
        if not released:
            log.warning("the lock %s (id %s) was released by someone else while it was held "
                        "(force-unlock?); another holder's lock was left alone", self.name,
                        self.id)


def force_unlock(registry: Registry, project: str, env: str, lock_id: str | None) -> LockInfo:
    """Release the environment's lock when ``lock_id`` is its id; otherwise refuse, naming the
    holder (the id comes from the 'holds the lock' message)."""
    name = lock_name(project, env)
    current = registry.get_model(name)
    where = f"environment {env}"
    if current is None:
        raise DiagnosticError([Diagnostic(where, code="not-locked",
                                          message=f"environment '{env}' has no apply lock")])
    info = LockInfo.from_tags(current.tags)
    usage = f"mlops-gitops force-unlock --env {env} {info.id}"
    if lock_id is None:
        raise DiagnosticError([Diagnostic(
            where, code="usage", message=f"environment '{env}' is locked by {info.describe()}",
            hint=f"if that apply is dead, release its lock with: {usage}")])
    if lock_id != info.id:
        raise DiagnosticError([Diagnostic(
            where, code="lock-id", message=f"lock id '{lock_id}' is not the current lock of "
            f"environment '{env}': it is held by {info.describe()}",
            hint=f"if that apply is dead: {usage}")])
    if not registry.release_lock(name, TAG_ID, lock_id):
        raise DiagnosticError([Diagnostic(where, code="lock-id", message=f"the lock of "
                                          f"environment '{env}' changed while releasing it",
                                          hint="run force-unlock again to see its holder")])
    return info
