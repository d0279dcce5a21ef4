"""infra/compose: the local stack's structure (services, images, dependencies, ports on 127.0.0.1 only), that its
commands name programs the package installs and files the image holds, and that its Serve config is a valid Ray
Serve config for our builder with serve/config.yaml's deployments. No container runtime runs on this machine, so
`docker compose` itself never runs here (docs/operations.md says so)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from serve_configs import check_serve_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "infra" / "compose" / "compose.yaml"
SERVE_CONFIG = REPO / "infra" / "compose" / "serve-config.yaml"
BIN = Path(sys.executable).parent  # the programs the package and its dependencies install
SERVICES = {"postgres", "s3", "s3-init", "mlflow", "ray-head", "ray-worker", "serve"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def command_words(service: dict) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def test_the_stack_has_its_services_each_with_an_image_we_build_or_pin() -> None:
    stack = compose()
    assert set(stack["services"]) == SERVICES
    for name, service in stack["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        if image.startswith("causalprint:"):
            build = service["build"]
            context = (COMPOSE.parent / build["context"]).resolve()
            assert context == REPO and (context / build["dockerfile"]).is_file(), name
        else:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in stack["services"], f"{name} depends on a missing service {dependency}"
            wanted = condition["condition"]
            assert wanted in ("service_started", "service_healthy", "service_completed_successfully")
            if wanted == "service_healthy":
                assert "healthcheck" in stack["services"][dependency], f"{dependency} has no health check"
    # The Serve app deploys only when asked (after the main job has registered a model).
    assert stack["services"]["serve"]["profiles"] == ["serve"]


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_commands_name_installed_programs_and_files_of_the_repository() -> None:
    stack = compose()
    for name, service in stack["services"].items():
        if not service.get("image", "").startswith("causalprint:"):
            continue
        words = command_words(service)
        assert words, f"{name} has no command"
        assert (BIN / words[0]).exists(), f"{name} runs {words[0]}, which the package does not install"
        for word in words[1:]:
            value = word.split("=", 1)[-1]
            if re.fullmatch(r"(infra|jobs|serve|platform)/[\w./-]+", value):
                assert (REPO / value).is_file(), f"{name} names {value}, which is not in the repository"
        for check in (service.get("healthcheck") or {}).get("test", [])[1:2]:
            assert check in ("wget", "pg_isready"), f"{name}'s health check runs {check}, absent from the image"


def test_the_ray_nodes_reach_storage_and_mlflow_inside_the_stack() -> None:
    services = compose()["services"]
    head, worker = services["ray-head"], services["ray-worker"]
    assert head["environment"] == worker["environment"]
    env = head["environment"]
    assert env["CAUSALPRINT__STORAGE__ROOT"].startswith("s3://causalprint/")
    assert env["AWS_ENDPOINT_URL"] == env["MLFLOW_S3_ENDPOINT_URL"] == "http://s3:9000"
    assert command_words(services["s3"]) == ["moto_server", "-H", "0.0.0.0", "-p", "9000"]
    assert env["CAUSALPRINT__MLFLOW__TRACKING_URI"] == "http://mlflow:5000"
    mlflow = " ".join(command_words(services["mlflow"]))
    assert "--port=5000" in mlflow and "@postgres:5432/" in mlflow and "mlflow:*" in mlflow
    assert "--address=ray-head:6379" in command_words(worker)
    assert "--port=6379" in command_words(head)
    # The bucket that every job and MLflow's artifacts use is the one s3-init creates.
    assert "Bucket='causalprint'" in " ".join(command_words(services["s3-init"]))
    assert "s3://causalprint/" in mlflow


def test_the_serve_config_is_serve_config_yaml_open_to_the_network_with_keys() -> None:
    raw = yaml.safe_load(SERVE_CONFIG.read_text())
    reference = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    check_serve_config(raw, reference)
    serve = compose()["services"]["serve"]
    assert command_words(serve)[:3] == ["serve", "deploy", "infra/compose/serve-config.yaml"]
