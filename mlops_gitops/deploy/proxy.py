"""The stable front of a local deployment: an HTTP reverse proxy (aiohttp) on the environment's
port that forwards every request to the current ``bentoml serve`` backend.

Why a proxy: a re-deploy starts the new bento on a free port, waits until it is ready and
smoke-tested, then switches the proxy (``SIGHUP`` after rewriting the backend file) and stops
the old backend once its in-flight requests are done. Requests are routed one by one, so
keep-alive clients never meet a closing backend: no request is lost. A crashed backend gives a
JSON 503, never a hang.

Run by the local deploy target: ``python -m mlops_gitops.deploy.proxy --host H --port P
--backend-file FILE``. ``GET /__mlops__/proxy`` answers the generation it routes to and the
requests in flight per backend.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from aiohttp import ClientConnectionError, ClientSession, ClientTimeout, TCPConnector, web

from mlops_gitops.deploy.target import PROXY_CONTROL_PATH as CONTROL_PATH

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailers", "transfer-encoding", "upgrade", "host",
                        "content-length"})
MAX_BODY = 64 * 1024 * 1024  # the backend enforces the environment's own, smaller limit


def read_backend(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not str(data.get("url", "")).startswith("http://127.0.0.1:"):
        raise ValueError(f"{path}: not a backend record")
    return data


class Proxy:
    def __init__(self, backend_file: Path, timeout_s: float):
        self.backend_file = backend_file
        self.backend = read_backend(backend_file)
        self.in_flight: dict[str, int] = {}
        self.timeout = ClientTimeout(total=timeout_s + 5)
        self.session: ClientSession | None = None

    def reload(self) -> None:
        try:
            self.backend = read_backend(self.backend_file)
        except (OSError, ValueError) as exc:  # keep routing to the last good backend
            print(f"proxy: ignoring backend file: {exc}", file=sys.stderr, flush=True)

    async def start(self, app: web.Application) -> None:
        self.session = ClientSession(connector=TCPConnector(limit=0, keepalive_timeout=30),
                                     auto_decompress=False)

    async def stop(self, app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == CONTROL_PATH:
            return web.json_response({"generation": self.backend.get("generation"),
                                      "url": self.backend["url"], "in_flight": self.in_flight})
        url = self.backend["url"]
        self.in_flight[url] = self.in_flight.get(url, 0) + 1
        try:
            body = await request.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            async with self.session.request(request.method, url + request.rel_url.raw_path_qs,
                                            headers=headers, data=body,
                                            timeout=self.timeout,
                                            allow_redirects=False) as answer:
                payload = await answer.read()
                out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(status=answer.status, body=payload, headers=out)
        except web.HTTPException:
            raise
        except TimeoutError:
            return _error(504, "the service did not answer in time")
        except (ClientConnectionError, OSError):
            return _error(503, f"the service of environment '{self.backend.get('env')}' is "
                          "not running: run 'mlops-gitops deploy' (status shows why)")
        finally:
            self.in_flight[url] -= 1
            if not self.in_flight[url]:
                del self.in_flight[url]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "field": ""}, status=status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops_gitops.deploy.proxy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend-file", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    proxy = Proxy(args.backend_file, args.timeout)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    app.on_startup.append(proxy.start)
    app.on_cleanup.append(proxy.stop)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, proxy.reload)
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port, backlog=1024)
        await site.start()
        print(f"proxy: listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
        await stopped.wait()
        await runner.cleanup()

    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"proxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
