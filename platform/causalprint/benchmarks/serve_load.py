"""The service under load, over HTTP on 127.0.0.1 only, bounded in requests and time: latency of one small PNG
and of a 1024 px JPEG, batched against unbatched throughput on the same replica, replicas over a ramp, and a
champion change in the middle of a load run.

The champion change registers a copy of the served version (same artifacts) as a new version, moves the alias
to it, and moves the alias back at the end; the copy stays in the registry, described as the benchmark's.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import Field

from causalprint.config import ConfigError, StrictModel
from causalprint.serving.config import LOOPBACK, ReplicaConfig, ServeJobConfig


class LoadConfig(StrictModel):
    latency_requests: int = Field(default=200, ge=10, le=5000, description="sequential requests per size")
    large_requests: int = Field(default=40, ge=5, le=1000)
    throughput_requests: int = Field(default=600, ge=50, le=20000, description="per batching mode")
    concurrency: int = Field(default=32, ge=1, le=256)
    batch_images: int = Field(default=32, ge=2, le=1024, description="images per /v1/attribute/batch request")
    batch_requests: int = Field(default=40, ge=5, le=5000, description="batch requests per batching mode")
    batch_concurrency: int = Field(default=4, ge=1, le=64)
    ramp: list[int] = Field(default=[2, 8, 32, 32, 8, 2], min_length=2, description="concurrency per stage")
    stage_s: float = Field(
        default=12.0,
        gt=0,
        le=120,
        description="a new replica loads its model in seconds: a stage must outlast that to see it run",
    )
    settle_s: float = Field(default=60.0, gt=0, le=600, description="longest wait for the replicas to shrink")
    switch_s: float = Field(
        default=20.0,
        gt=0,
        le=300,
        description="length of the champion-change run; the alias moves 1 s in, so keep it past serve.refresh_s",
    )
    max_seconds: float = Field(default=900.0, gt=0, le=3600, description="the whole benchmark's time cap")


class BenchServeJobConfig(ServeJobConfig):
    load: LoadConfig = LoadConfig()


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    sent: int = 0
    lost: int = 0
    seconds: float = 0.0
    versions: list[str] = field(default_factory=list)
    images_per_request: int = 1

    def record(self, status: int, ms: float, version: str | None) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies_ms.append(ms)
        if version:
            self.versions.append(version)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {
            "phase": self.name,
            "sent": self.sent,
            "answered": self.answered,
            "ok": self.statuses.get(200, 0),
            "lost": self.lost,
            "5xx": sum(n for s, n in self.statuses.items() if s >= 500),
            "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)),
            "seconds": self.seconds,
            "throughput": self.answered / self.seconds if self.seconds else 0.0,
            "images_per_second": self.images_per_request * self.answered / self.seconds if self.seconds else 0.0,
        }


def payloads(size: int = 32) -> dict[str, bytes]:
    """A ``size`` px PNG of noise and a 1024x1024 JPEG of a real photograph (scikit-image's astronaut)."""
    from skimage import data as samples

    rng = np.random.default_rng(0)
    small = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(small, format="PNG")
    large = io.BytesIO()
    Image.fromarray(samples.astronaut()).resize((1024, 1024), Image.Resampling.LANCZOS).save(
        large, format="JPEG", quality=90
    )
    return {"png": small.getvalue(), "jpeg": large.getvalue()}


async def _load(
    url: str, data: bytes, name: str, phase: Phase, *, total: int | None, concurrency: int, until: float | None = None
) -> None:
    """Send ``total`` requests (or until ``until``) with ``concurrency`` in flight; every answer is recorded.
    A phase of ``images_per_request`` > 1 posts that many copies to ``/v1/attribute/batch``."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        counter = iter(range(total)) if total is not None else None

        async def worker() -> None:
            while True:
                if counter is not None and next(counter, None) is None:
                    return
                if until is not None and time.monotonic() >= until:
                    return
                phase.sent += 1
                start = time.perf_counter()
                try:
                    if phase.images_per_request > 1:
                        files = [("files", (f"{i}-{name}", data)) for i in range(phase.images_per_request)]
                        response = await client.post("/v1/attribute/batch", files=files)
                        ok = response.status_code == 200 and response.json()["failed"] == 0
                        phase.record(response.status_code if ok else 207, (time.perf_counter() - start) * 1000, None)
                        continue
                    response = await client.post("/v1/attribute", files={"file": (name, data)})
                    version = response.json().get("model", {}).get("version") if response.status_code == 200 else None
                    phase.record(response.status_code, (time.perf_counter() - start) * 1000, version)
                except httpx.HTTPError:
                    phase.lost += 1  # no answer at all

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        phase.seconds += time.perf_counter() - start


def _replicas(deployment: str = "Attributor", states: tuple[str, ...] = ("RUNNING",)) -> int:
    from ray import serve

    from causalprint.serving.app import APP_NAME

    status = serve.status().applications[APP_NAME].deployments[deployment]
    # ReplicaState is a str enum, so its keys compare equal to the plain state names.
    return int(sum(n for state, n in status.replica_states.items() if state in states))


def _set_batching(batch: int) -> str:
    """Set the single model replica's batch size in place; returns its id (the same replica serves both runs)."""
    from ray import serve

    from causalprint.serving.app import APP_NAME
    from causalprint.serving.deployments import MODEL_DEPLOYMENT

    handle = serve.get_deployment_handle(MODEL_DEPLOYMENT, app_name=APP_NAME)
    return handle.set_batching.remote(batch).result(timeout_s=60)


def _redeploy(job: BenchServeJobConfig, replicas: ReplicaConfig) -> None:
    """Deploy again with the model's scaling set to ``replicas`` (new replicas)."""
    from ray import serve

    from causalprint.serving.app import APP_NAME, bind

    serve_cfg = job.serve.model_copy(update={"model_replicas": replicas})
    serve.run(bind(job.model_copy(update={"serve": serve_cfg})), name=APP_NAME, route_prefix="/")


def _copy_champion(job: BenchServeJobConfig, served_version: str) -> tuple[str, str, str]:
    """Register a copy of the served version; returns (model name, alias, copy's version)."""
    import mlflow

    from causalprint.storage import Storage
    from causalprint.tracking.mlflow_setup import tracking_uri_for
    from causalprint.tracking.versions import parse_model_uri

    name, _, alias = parse_model_uri(job.serve.model)
    if alias is None:
        raise ConfigError("the champion-change run needs serve.model to name an alias (models:/<name>@<alias>)")
    tracking = tracking_uri_for(job.mlflow, Storage(job.storage))
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    original = client.get_model_version(name, served_version)
    assert original.source is not None  # every registered version records the artifacts it was made from
    copy = client.create_model_version(
        name,
        original.source,
        run_id=original.run_id,
        tags=original.tags,
        description=f"copy of version {served_version} made by causalprint bench "
        f"serve to measure a champion change under load",
    )
    return name, alias, str(copy.version)


def _set_alias(job: BenchServeJobConfig, name: str, alias: str, version: str) -> None:
    import mlflow

    from causalprint.storage import Storage
    from causalprint.tracking.mlflow_setup import tracking_uri_for

    tracking = tracking_uri_for(job.mlflow, Storage(job.storage))
    mlflow.MlflowClient(tracking, registry_uri=tracking).set_registered_model_alias(name, alias, version)


def run_serve_bench(job: BenchServeJobConfig) -> dict[str, Any]:
    """Deploy, measure every phase, restore the alias, stop Serve; returns the figures."""
    import httpx

    from causalprint.serving import launcher

    if job.serve.host not in LOOPBACK:
        raise ConfigError(f"the load test sends traffic to 127.0.0.1 only; serve.host is {job.serve.host}")
    cfg, started = job.load, time.monotonic()
    fixed = job.serve.model_replicas.model_copy(update={"min_replicas": 1, "max_replicas": 1})
    url = launcher.start(job.model_copy(update={"serve": job.serve.model_copy(update={"model_replicas": fixed})}))
    try:
        info = httpx.get(f"{url}/v1/models", timeout=60).json()["serving"]
        size, served_version = info["image_size"], info["model"]["version"]
        data = payloads(32)
        results: dict[str, Any] = {
            "url": url,
            "model": info["model"]["uri"],
            "image_size": size,
            "phases": [],
            "ramp": [],
        }

        def run(phase: Phase, **kwargs: Any) -> Phase:
            asyncio.run(_load(url, **kwargs, phase=phase))
            results["phases"].append(phase.summary())
            if time.monotonic() - started > cfg.max_seconds:
                raise TimeoutError(f"the benchmark passed load.max_seconds {cfg.max_seconds}")
            return phase

        # 1. Latency, one request at a time.
        run(Phase("latency, 32 px PNG"), data=data["png"], name="x.png", total=cfg.latency_requests, concurrency=1)
        run(Phase("latency, 1024x1024 JPEG"), data=data["jpeg"], name="x.jpg", total=cfg.large_requests, concurrency=1)
        # 2. Unbatched, then batched, on the same single model replica (its batch size changes in place).
        batched_size = job.serve.batching.max_batch_size
        replica = _set_batching(1)
        run(
            Phase("throughput, unbatched (max_batch_size 1)"),
            data=data["png"],
            name="x.png",
            total=cfg.throughput_requests,
            concurrency=cfg.concurrency,
        )
        same = [_set_batching(batched_size) == replica]
        run(
            Phase(f"throughput, batched (max_batch_size {job.serve.batching.max_batch_size})"),
            data=data["png"],
            name="x.png",
            total=cfg.throughput_requests,
            concurrency=cfg.concurrency,
        )
        # 2b. The same two modes through the batch endpoint: many images per request, so the HTTP front costs
        # less per image and the model's pass is what batching changes.
        same.append(_set_batching(1) == replica)
        run(
            Phase(
                f"batch endpoint ({cfg.batch_images} images a request), unbatched (max_batch_size 1)",
                images_per_request=cfg.batch_images,
            ),
            data=data["png"],
            name="x.png",
            total=cfg.batch_requests,
            concurrency=cfg.batch_concurrency,
        )
        same.append(_set_batching(batched_size) == replica)
        run(
            Phase(
                f"batch endpoint ({cfg.batch_images} images a request), batched (max_batch_size "
                f"{job.serve.batching.max_batch_size})",
                images_per_request=cfg.batch_images,
            ),
            data=data["png"],
            name="x.png",
            total=cfg.batch_requests,
            concurrency=cfg.batch_concurrency,
        )
        results["same_replica"] = all(same) and _replicas() == 1
        # 3. The ramp, with the configured autoscaling; replicas sampled twice a second until they shrink back.
        _redeploy(job, job.serve.model_replicas)
        samples: list[tuple[float, int, int, int, int]] = []
        current = {"concurrency": 0}
        done = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            while not done.wait(0.5):
                samples.append(
                    (
                        time.monotonic() - t0,
                        _replicas(),
                        current["concurrency"],
                        _replicas("Ingress"),
                        _replicas(states=("STARTING", "RUNNING")),
                    )
                )

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        ramp = Phase("ramp " + "→".join(map(str, cfg.ramp)))
        for level in cfg.ramp:
            current["concurrency"] = level
            asyncio.run(
                _load(
                    url, data["png"], "x.png", ramp, total=None, concurrency=level, until=time.monotonic() + cfg.stage_s
                )
            )
        current["concurrency"] = 0
        settle_until = time.monotonic() + cfg.settle_s
        while time.monotonic() < settle_until and not (
            samples and samples[-1][1] == samples[-1][3] == 1 and max(s[1] for s in samples) > 1
        ):
            time.sleep(0.5)
        time.sleep(1.0)
        done.set()
        sampler.join()
        results["phases"].append(ramp.summary())
        results["ramp"] = samples
        # 4. A champion change during a load run.
        name, alias, copy = _copy_champion(job, served_version)
        switch = Phase(f"champion change v{served_version} → v{copy}")
        end = time.monotonic() + cfg.switch_s
        loader = threading.Thread(
            target=lambda: asyncio.run(_load(url, data["png"], "x.png", switch, total=None, concurrency=8, until=end))
        )
        loader.start()
        time.sleep(1.0)
        _set_alias(job, name, alias, copy)
        switched_at = len(switch.versions)
        loader.join()
        _set_alias(job, name, alias, served_version)
        results["phases"].append(switch.summary())
        after = switch.versions[switched_at:]
        first_new = after.index(copy) if copy in after else None
        results["switch"] = {
            "from": served_version,
            "to": copy,
            "answered": switch.answered,
            "failed": switch.answered - switch.statuses.get(200, 0),
            "lost": switch.sent - switch.answered,
            "new_version_seen": first_new is not None,
            "old_after_new": sum(1 for v in after[first_new:] if v != copy) if first_new is not None else None,
        }
    finally:
        launcher.stop()
    return results


def plot_ramp(samples: list[tuple[float, int, int, int, int]], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, replicas, load, ingress, _ = zip(*samples) if samples else ((), (), (), (), ())
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.step(t, replicas, where="post", label="model replicas (running)", color="#1b6b2f")
    ax.step(t, ingress, where="post", label="ingress replicas (running)", color="#9a3b0c", linestyle="--")
    ax.set_xlabel("seconds")
    ax.set_ylabel("replicas")
    ax.set_ylim(0, max(replicas or (1,)) + 1)
    other = ax.twinx()
    other.step(t, load, where="post", label="clients in flight", color="#3d6bd8", alpha=0.6)
    other.set_ylabel("concurrent clients")
    fig.legend(loc="upper right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_serve_bench(result: dict[str, Any]) -> str:
    rows = [
        "| phase | requests sent | answered | 200 | 5xx | lost | p50 ms | p95 ms | p99 ms | requests/s | images/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in result["phases"]:
        rows.append(
            f"| {p['phase']} | {p['sent']} | {p['answered']} | {p['ok']} | {p['5xx']} | {p['lost']} | "
            f"{p['p50_ms']:.1f} | {p['p95_ms']:.1f} | {p['p99_ms']:.1f} | {p['throughput']:.1f} | "
            f"{p['images_per_second']:.1f} |"
        )
    lines = ["\n".join(rows), ""]
    for route in ("throughput", "batch endpoint"):
        pair = [p for p in result["phases"] if p["phase"].startswith(route)]
        if len(pair) == 2 and pair[0]["images_per_second"]:
            lines.append(
                f"{route.capitalize()}: batched {pair[1]['images_per_second']:.1f} images/s is "
                f"{pair[1]['images_per_second'] / pair[0]['images_per_second']:.2f}x unbatched "
                f"{pair[0]['images_per_second']:.1f}, on the same single model replica (only its batch "
                f"size changed; same replica: {result['same_replica']})."
            )
    ramp = result["ramp"]
    for name, col in (("model", 1), ("ingress", 3)):
        peak = max((s[col] for s in ramp), default=0)
        last = ramp[-1][col] if ramp else 0
        lines.append(
            f"Under the ramp the {name} deployment went from {ramp[0][col] if ramp else 0} to {peak} "
            f"running replicas and was at {last} when sampling stopped ({ramp[-1][0] if ramp else 0:.0f} s)."
        )
    lines.append(f"Model replicas running or starting, at most: {max((s[4] for s in ramp), default=0)}.")
    s = result["switch"]
    lines.append(
        f"Champion change v{s['from']} → v{s['to']} during a load run: {s['answered']} answered, "
        f"{s['failed']} failed, {s['lost']} lost; new version seen: {s['new_version_seen']}; answers "
        f"naming the old version after the first new one: {s['old_after_new']}."
    )
    lost = sum(p["lost"] for p in result["phases"])
    fivexx = sum(p["5xx"] for p in result["phases"])
    lines.append(
        f"Over all phases: {fivexx} 5xx answers and {lost} lost requests. Model: {result['model']} at "
        f"{result['image_size']} px."
    )
    if result.get("plot_link"):
        lines.append(f"\n![replicas over the ramp]({result['plot_link']})")
    return "\n".join(lines)
