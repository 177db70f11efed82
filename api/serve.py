"""`marshrut serve`: the API under uvicorn."""

from __future__ import annotations

import os

from .settings import Settings


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Starts uvicorn; bound to a non-loopback address it requires MARSHRUT_API_KEYS.

    The host goes to the app through MARSHRUT_HOST, so that every worker process knows where it
    is reachable from. Each worker runs up to MARSHRUT_MAX_CONCURRENT_SOLVES solves, claiming
    plans from the shared database.
    """
    import uvicorn

    os.environ["MARSHRUT_HOST"] = host
    Settings().check()  # fail before binding, with a clear message
    uvicorn.run("marshrut.api.main:app_factory", factory=True, host=host, port=port, workers=workers,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=30)


if __name__ == "__main__":  # python -m marshrut.api.serve [host] [port] [workers]
    import sys

    args = sys.argv[1:]
    serve(args[0] if args else "127.0.0.1", int(args[1]) if len(args) > 1 else 8000,
          int(args[2]) if len(args) > 2 else 1)
