"""Building S3 clients (pyarrow filesystem and boto3) from a StorageConfig and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from causalprint.storage.config import StorageConfig, check_endpoint
from causalprint.storage.uri import StorageError

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Settings:
    """Endpoint and region, fixed once where the Storage is built so that every worker talks to the same S3."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    max_attempts: int = 5


def _env(environ: Mapping[str, str], *names: str) -> tuple[str | None, str | None]:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value, name
    return None, None


def s3_settings(config: StorageConfig, environ: Mapping[str, str] | None = None) -> S3Settings:
    """Config values first, then ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``."""
    environ = os.environ if environ is None else environ
    endpoint = config.endpoint_url
    if endpoint is None:
        endpoint, var = _env(environ, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        if endpoint is not None:
            try:
                check_endpoint(endpoint, f"environment variable {var}")
            except ValueError as exc:
                raise StorageError(str(exc)) from None
    region = config.region or _env(environ, "AWS_REGION", "AWS_DEFAULT_REGION")[0] or DEFAULT_REGION
    return S3Settings(
        endpoint_url=endpoint.rstrip("/") if endpoint else None,
        region=region,
        access_key_id=config.access_key_id.get_secret_value() if config.access_key_id else None,
        secret_access_key=config.secret_access_key.get_secret_value() if config.secret_access_key else None,
        max_attempts=config.max_attempts,
    )


def pyarrow_s3(settings: S3Settings) -> Any:
    """A ``pyarrow.fs.S3FileSystem``; credentials left unset fall through to the AWS chain."""
    from pyarrow.fs import AwsStandardS3RetryStrategy, S3FileSystem

    kwargs: dict[str, Any] = {
        "region": settings.region,
        "retry_strategy": AwsStandardS3RetryStrategy(max_attempts=settings.max_attempts),
    }
    if settings.endpoint_url:
        # pyarrow wants host[:port] and the transport scheme separately.
        parts = urlsplit(settings.endpoint_url)
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme
    if settings.access_key_id:
        kwargs["access_key"] = settings.access_key_id
        kwargs["secret_key"] = settings.secret_access_key
    return S3FileSystem(**kwargs)


def boto3_s3(settings: S3Settings) -> Any:
    """A boto3 S3 client on its own session (the default session is not thread-safe to build clients from)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        region_name=settings.region,
    )
    # Custom endpoints (MinIO, moto, Ceph) rarely serve virtual-host buckets; pyarrow uses path style too.
    addressing = "path" if settings.endpoint_url else "auto"
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        config=Config(
            s3={"addressing_style": addressing},
            retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        ),
    )
