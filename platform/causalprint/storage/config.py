"""Where the platform keeps its files: a local directory or an S3 bucket and prefix."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from causalprint.config import StrictModel
from causalprint.storage.uri import StorageError, parse_root


class S3Access(StrictModel):
    """How to reach S3: endpoint, region, credentials and retries. Unset settings fall back to the standard AWS
    variables. The base of the storage root's config and of every read-only source's."""

    endpoint_url: str | None = None
    """S3 endpoint such as ``http://127.0.0.1:9000``; else ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``."""
    region: str | None = None
    """Else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else ``us-east-1``."""
    access_key_id: SecretStr | None = None
    """Else the standard AWS credential chain (environment, profile, instance role)."""
    secret_access_key: SecretStr | None = None
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        strict=True,
        description="S3 requests: attempts per request, with back-off, for throttling, server "
        "errors and timeouts (botocore's standard retry mode)",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            check_endpoint(value, "endpoint_url")
        return value

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("region must not be empty (leave it unset to use the AWS defaults)")
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> S3Access:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key must be set together")
        return self

    def access(self) -> dict[str, Any]:
        """The S3 settings alone, to build another config that reaches the same place."""
        return {name: getattr(self, name) for name in S3Access.model_fields}


class StorageConfig(S3Access):
    """Storage root and, for S3, how to reach it."""

    root: str = ".causalprint"
    """Local directory (relative ones resolve against the cwd when the Storage is built) or ``s3://bucket/prefix``."""

    @field_validator("root")
    @classmethod
    def _check_root(cls, value: str) -> str:
        try:
            parse_root(value)
        except StorageError as exc:
            raise ValueError(f"root: {exc}") from None
        return value

    @property
    def is_s3(self) -> bool:
        return parse_root(self.root).scheme == "s3"


def check_endpoint(value: str, name: str) -> str:
    """Validate an S3 endpoint URL; ``name`` (config key or variable) is named in the error."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must look like http(s)://host[:port], got {value!r}")
    return value
