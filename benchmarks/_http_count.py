"""Run ``mlops-gitops ARGS...`` and write the number of HTTP requests it made to the file named
by ``HTTP_COUNT_FILE`` (counted on ``http.client``, under both urllib and requests)."""

from __future__ import annotations

import atexit
import http.client
import os
import runpy
import sys

_count = 0
_putrequest = http.client.HTTPConnection.putrequest


def _counting(self, method, url, *args, **kwargs):
    global _count
    _count += 1
    return _putrequest(self, method, url, *args, **kwargs)


def _report() -> None:
    with open(os.environ["HTTP_COUNT_FILE"], "w") as out:
        out.write(str(_count))


http.client.HTTPConnection.putrequest = _counting
atexit.register(_report)
sys.argv = ["mlops-gitops", *sys.argv[1:]]
runpy.run_module("mlops_gitops", run_name="__main__", alter_sys=True)
