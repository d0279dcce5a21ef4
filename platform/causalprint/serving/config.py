"""Typed configuration of the Serve application: which model, how requests are batched, limited and checked,
and how each deployment scales."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from causalprint.config import StrictModel
from causalprint.imaging.tiles import TileOptions
from causalprint.runtime.job_config import JobConfig
from causalprint.scan.config import DEFAULT_MODEL

Role = Literal["user", "admin"]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class KeyRecord(StrictModel):
    """One API key as stored: its public id, its role and the salted hash of its secret (never the secret)."""

    id: str = Field(pattern=r"^[a-z0-9]{8,32}$", description="the key's public id (the part after cp_)")
    role: Role
    hash: str = Field(pattern=r"^sha256\$[0-9a-f]{32}\$[0-9a-f]{64}$", description="sha256$<salt>$<digest>")


class AuthConfig(StrictModel):
    """API keys and the per-key request rate. Keys also come from the variable named by ``keys_env``
    (``role:key,role:key``), hashed as the app is built; with no key at all the app must bind to 127.0.0.1."""

    keys: tuple[KeyRecord, ...] = ()
    keys_env: str = "CAUSALPRINT_API_KEYS"
    requests_per_minute: float = Field(
        default=1200,
        gt=0,
        description="sustained rate per key (or per client address without keys), per ingress replica",
    )
    burst: int = Field(default=120, ge=1, description="requests a key may send at once before the rate applies")


class LimitsConfig(StrictModel):
    """What one request may cost. Each refusal is a 4xx with its reason."""

    max_body_bytes: int = Field(default=30 * 1024**2, ge=1024, le=1024**3)
    max_image_bytes: int = Field(default=25 * 1024**2, ge=1, description="largest encoded image")
    max_pixels: int = Field(default=50_000_000, ge=1, description="largest width*height, read from the header")
    max_batch_images: int = Field(default=32, ge=1, le=1024)
    request_timeout_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _image_fits_body(self) -> LimitsConfig:
        if self.max_image_bytes > self.max_body_bytes:
            raise ValueError(f"max_image_bytes {self.max_image_bytes} exceeds max_body_bytes {self.max_body_bytes}")
        return self


class BatchingConfig(StrictModel):
    """Dynamic batching in the model deployment (``@serve.batch``); live-changeable through ``user_config``."""

    max_batch_size: int = Field(default=32, ge=1, le=1024)
    # Short: a lone request waits this long for company; under load the queue fills batches anyway.
    batch_wait_timeout_s: float = Field(default=0.002, ge=0, le=1)


class ReplicaConfig(StrictModel):
    """One deployment's replicas: Serve's autoscaling settings and each replica's resources."""

    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    target_ongoing_requests: float = Field(default=4, gt=0)
    max_ongoing_requests: int = Field(default=64, ge=1)
    upscale_delay_s: float = Field(default=2.0, ge=0)
    downscale_delay_s: float = Field(default=10.0, ge=0)
    # Serve's defaults (10 s, 30 s) average a short burst away: replicas then follow load only after minutes.
    metrics_interval_s: float = Field(default=1.0, gt=0, description="how often replicas report their load")
    look_back_period_s: float = Field(default=5.0, gt=0, description="the window the load is averaged over")
    num_cpus: float = Field(default=0.5, gt=0)
    num_gpus: float = Field(default=0, ge=0, description="GPUs per replica; 0 on a machine without one")

    @model_validator(mode="after")
    def _order(self) -> ReplicaConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}")
        return self

    def autoscaling(self) -> dict[str, float]:
        return {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "initial_replicas": max(self.min_replicas, 1),
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
            "metrics_interval_s": self.metrics_interval_s,
            "look_back_period_s": self.look_back_period_s,
        }

    def actor_options(self) -> dict[str, float]:
        return {"num_cpus": self.num_cpus, **({"num_gpus": self.num_gpus} if self.num_gpus else {})}


class ServeOptions(StrictModel):
    """What the endpoints serve and how (a preset holds model and reference)."""

    model: str = Field(
        default=DEFAULT_MODEL,
        description="models:/<name>@<alias> (followed as the alias moves) or models:/<name>/<version>",
    )
    reference: str = Field(description="storage folder of the reference model the attributor's features came from")
    decision: Literal["logits", "prototypes"] = "prototypes"
    precision: Literal["auto", "float32", "float16", "bfloat16"] = "float32"
    refresh_s: float = Field(default=5.0, gt=0, description="how often a model replica asks where the alias points")
    verify_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="default operating point of /v1/verify: the calibrated probability that says yes",
    )
    torch_threads: int = Field(default=1, ge=1, description="intra-op threads per model replica")
    access_log: bool = Field(
        default=False, description="Serve's per-request log lines (a measurable cost per request on a small machine)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    batching: BatchingConfig = BatchingConfig()
    limits: LimitsConfig = LimitsConfig()
    intake: TileOptions = Field(
        default=TileOptions(),
        description="how an image larger than the model's size is read: native-resolution tiles (default) or "
        "resized; /v1/anonymize always reads the image resized, as it answers with an image of the model's size",
    )
    auth: AuthConfig = AuthConfig()
    model_replicas: ReplicaConfig = ReplicaConfig()
    ingress_replicas: ReplicaConfig = ReplicaConfig(max_replicas=2, target_ongoing_requests=16, num_cpus=0.25)


class ServeJobConfig(JobConfig):
    serve: ServeOptions
