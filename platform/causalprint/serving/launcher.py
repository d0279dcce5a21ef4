"""``causalprint serve``: start Ray and Serve on the embedded defaults, deploy the app, wait until it answers
``/readyz``, print the URL, and keep serving until interrupted."""

from __future__ import annotations

import logging
import time

import httpx

from causalprint.runtime.ray_local import ensure_ray
from causalprint.serving.app import APP_NAME, bind
from causalprint.serving.config import ServeJobConfig

log = logging.getLogger(__name__)


def url_of(job: ServeJobConfig) -> str:
    host = job.serve.host if ":" not in job.serve.host else f"[{job.serve.host}]"
    return f"http://{host}:{job.serve.port}"


def start(job: ServeJobConfig, *, ready_timeout_s: float = 300.0) -> str:
    """Deploy ``job`` and return its URL once ``/readyz`` answers 200."""
    from ray import serve

    ensure_ray(job.ray)
    serve.start(http_options={"host": job.serve.host, "port": job.serve.port})
    serve.run(bind(job), name=APP_NAME, route_prefix="/")
    url = url_of(job)
    wait_ready(url, ready_timeout_s)
    return url


def wait_ready(url: str, timeout_s: float) -> None:
    deadline, last = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/readyz", timeout=10)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise TimeoutError(f"{url}/readyz did not answer 200 within {timeout_s} s (last: {last})")


def stop() -> None:
    from ray import serve

    serve.shutdown()


def serve_forever(job: ServeJobConfig) -> int:
    """Serve until Ctrl-C, which stops Serve and surfaces as KeyboardInterrupt (the CLI's exit 130)."""
    url = start(job)
    print(f"causalprint is serving at {url}  (web page {url}/, API docs {url}/docs); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop()
        raise KeyboardInterrupt(f"stopped serving at {url}") from None
