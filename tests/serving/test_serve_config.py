"""serve/config.yaml is a valid Ray Serve config, names our builder, and holds the code's defaults."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from causalprint.serving.app import AppArgs, build_app, load_serve_job
from causalprint.serving.config import ServeOptions

CONFIG = Path(__file__).resolve().parents[2] / "serve" / "config.yaml"


def test_the_serve_config_validates_and_matches_the_defaults() -> None:
    raw = yaml.safe_load(CONFIG.read_text())
    schema = ServeDeploySchema.model_validate(raw)
    (app,) = schema.applications
    assert app.import_path == "causalprint.serving.app:build_app" and app.route_prefix == "/"
    AppArgs.model_validate(app.args)
    defaults = load_serve_job(app.args["preset"]).serve
    assert raw["http_options"] == {"host": defaults.host, "port": defaults.port}
    deployments = {d["name"]: d for d in raw["applications"][0]["deployments"]}
    for name, replicas in (("Attributor", defaults.model_replicas), ("Ingress", defaults.ingress_replicas)):
        assert deployments[name]["autoscaling_config"] == replicas.autoscaling()
        assert deployments[name]["ray_actor_options"] == replicas.actor_options()
        assert deployments[name]["max_ongoing_requests"] == replicas.max_ongoing_requests
    assert deployments["Attributor"]["user_config"] == defaults.batching.model_dump()


def test_the_builder_binds_both_deployments_with_their_scaling() -> None:
    app = build_app({"preset": "bench"})
    ingress = app._bound_deployment
    assert ingress.name == "Ingress"
    (model,) = ingress.init_args
    assert model._bound_deployment.name == "Attributor"
    options = ServeOptions.model_validate({"reference": "x"})
    assert (
        model._bound_deployment._deployment_config.autoscaling_config.max_replicas
        == options.model_replicas.max_replicas
    )
