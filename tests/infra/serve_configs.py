"""The check shared by the compose stack's Serve config and the RayService's serveConfigV2."""

from __future__ import annotations

from ray.serve.schema import ServeDeploySchema

from causalprint.serving.app import AppArgs, load_serve_job


def check_serve_config(raw: dict, reference: dict) -> None:
    """``raw`` is a valid Serve config for our builder, listening on 0.0.0.0 with serve.host saying so (keys
    required), and otherwise equal to serve/config.yaml (``reference``)."""
    schema = ServeDeploySchema.model_validate(raw)
    (app,) = schema.applications
    assert app.import_path == "causalprint.serving.app:build_app"
    args = AppArgs.model_validate(app.args)
    job = load_serve_job(args.preset, args.config, args.overrides)  # the overrides are real config keys
    assert job.serve.host == raw["http_options"]["host"] == "0.0.0.0"
    assert raw["http_options"]["port"] == reference["http_options"]["port"] == job.serve.port
    (ours,), (theirs,) = raw["applications"], reference["applications"]
    assert ours["deployments"] == theirs["deployments"]
    assert {k: v for k, v in ours.items() if k != "args"} == {k: v for k, v in theirs.items() if k != "args"}
    assert ours["args"]["preset"] == theirs["args"]["preset"]
