"""The Serve application: the typed builder that ``serve/config.yaml`` names (``import_path``), and the one
``causalprint serve`` binds."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from causalprint.config import ConfigError, StrictModel, build_config
from causalprint.presets import load_preset
from causalprint.serving.config import LOOPBACK, ServeJobConfig
from causalprint.serving.keys import KeyFormatError, gather_keys

log = logging.getLogger(__name__)
APP_NAME = "causalprint"


class AppArgs(StrictModel):
    """The ``args`` of the application in a Serve config file."""

    preset: str = Field(default="demo", pattern=r"^[a-z0-9][a-z0-9-]*$")
    config: str | None = Field(default=None, description="a YAML file of ServeJobConfig, over the preset")
    overrides: list[str] = Field(default_factory=list, description="key.sub=value, as --set")


def load_serve_job(
    preset: str, config: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ServeJobConfig:
    """The service's config as ``causalprint serve`` builds it: defaults, preset, file, environment, overrides."""
    return build_config(ServeJobConfig, load_preset("serve", preset), yaml_path=config, overrides=overrides)


def bind(job: ServeJobConfig) -> Any:
    """The application graph for ``job``: the model deployment (batching as ``user_config``, so it changes
    live) and the ingress bound to it, each with its autoscaling and resources."""
    from causalprint.serving.deployments import AttributorDeployment, ingress_deployment

    # The service's own fields only (a benchmark's config extends this one). Passed as objects, not JSON: a JSON
    # dump would mask the storage credentials.
    job = ServeJobConfig(storage=job.storage, ray=job.ray, mlflow=job.mlflow, serve=job.serve)
    cfg = job.serve
    try:
        keys = gather_keys(cfg.auth.keys, cfg.auth.keys_env)
    except KeyFormatError as exc:
        raise ConfigError(str(exc)) from None
    if not keys:
        if cfg.host not in LOOPBACK:
            raise ConfigError(
                f"serve.host is {cfg.host}, but no API keys are configured (serve.auth.keys or "
                f"{cfg.auth.keys_env}): without keys the service binds to 127.0.0.1 only"
            )
        log.warning(
            "serving WITHOUT API keys: anyone on this machine may call it (bound to %s only); set %s or "
            "serve.auth.keys to require keys",
            cfg.host,
            cfg.auth.keys_env,
        )
    else:
        log.info("serving with %d API keys (%d admin)", len(keys), sum(k.role == "admin" for k in keys))

    def scaled(deployment: Any, replicas: Any, **extra: Any) -> Any:
        return deployment.options(
            autoscaling_config=replicas.autoscaling(),
            ray_actor_options=replicas.actor_options(),
            max_ongoing_requests=replicas.max_ongoing_requests,
            logging_config={"enable_access_log": cfg.access_log},
            **extra,
        )

    model = scaled(AttributorDeployment, cfg.model_replicas, user_config=cfg.batching.model_dump()).bind(job)
    return scaled(ingress_deployment(job, keys), cfg.ingress_replicas).bind(model)


def build_app(args: dict[str, Any]) -> Any:
    """``import_path`` of ``serve/config.yaml``: args ``{preset, config, overrides}`` -> the application."""
    parsed = AppArgs.model_validate(args or {})
    return bind(load_serve_job(parsed.preset, parsed.config, parsed.overrides))
