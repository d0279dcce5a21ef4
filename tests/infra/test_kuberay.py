"""infra/k8s: the RayCluster, RayJob and RayService manifests validate against the CRD schemas of the KubeRay
release we pin (v1.4.0), and say what the rest of the repository says.

The schema is a HAND-WRITTEN SUBSET (infra/k8s/schemas/kuberay-v1.4.0-subset.schema.yaml): no package that the
project's machines can install ships KubeRay's CRDs. Its header says what it covers and how it was made.
"""

from __future__ import annotations

import copy
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.runtime_env import RuntimeEnv
from serve_configs import check_serve_config

from causalprint.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
SCHEMA = K8S / "schemas" / "kuberay-v1.4.0-subset.schema.yaml"
MANIFESTS = {"RayCluster": "raycluster.yaml", "RayJob": "rayjob.yaml", "RayService": "rayservice.yaml"}
IMAGE_WORKDIR = "/opt/causalprint"  # WORKDIR of infra/docker/Dockerfile.*


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = yaml.safe_load(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def manifest(kind: str) -> dict:
    (document,) = list(yaml.safe_load_all((K8S / MANIFESTS[kind]).read_text()))
    return document


def errors(validator: jsonschema.Draft202012Validator, document: dict) -> list[str]:
    """Every error, with the path to it, from the schema of the document's own kind (the whole schema's oneOf
    would only say that no kind matched)."""
    kind = document.get("kind")
    scoped = validator.evolve(schema={"$defs": validator.schema["$defs"], "$ref": f"#/$defs/{kind}"})
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in scoped.iter_errors(document)]


@pytest.mark.parametrize("kind", MANIFESTS)
def test_the_manifest_validates_against_the_pinned_crd_schema(validator, kind: str) -> None:
    document = manifest(kind)
    assert document["kind"] == kind and document["apiVersion"] == "ray.io/v1"
    assert errors(validator, document) == []
    validator.validate(document)  # and against the whole schema (its oneOf of the three kinds)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["spec"]["headGroupSpec"].update(rayStartParam={}), "Additional properties"),
        (lambda d: d["spec"]["headGroupSpec"].pop("template"), "'template' is a required property"),
        (lambda d: d["spec"]["workerGroupSpecs"][0].update(maxReplicas="8"), "is not of type 'integer'"),
        (lambda d: d["spec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}), "is not of type 'string'"),
        (lambda d: d["spec"]["autoscalerOptions"].update(upscalingMode="Fast"), "is not one of"),
        (lambda d: d.update(apiVersion="ray.io/v1alpha1"), "'ray.io/v1' was expected"),
        (
            lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(
                imagePullPolicy="Sometimes"
            ),
            "is not one of",
        ),
        (
            lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(
                cpu="two"
            ),
            "is not valid",
        ),
    ],
)
def test_the_schema_refuses_what_the_operator_would(validator, mutate, expected: str) -> None:
    """The check has teeth: a misspelt field, a missing required one, a wrong type or value each fail."""
    document = copy.deepcopy(manifest("RayCluster"))
    mutate(document)
    found = errors(validator, document)
    assert found and any(expected in e for e in found), found


def test_the_job_and_the_service_run_the_cluster_of_raycluster_yaml() -> None:
    cluster = manifest("RayCluster")["spec"]
    assert manifest("RayJob")["spec"]["rayClusterSpec"] == cluster
    assert manifest("RayService")["spec"]["rayClusterConfig"] == cluster


def test_the_cluster_matches_the_images_and_the_pinned_ray() -> None:
    spec = manifest("RayCluster")["spec"]
    constraints = (REPO / "infra" / "constraints.txt").read_text().splitlines()
    assert f"ray=={spec['rayVersion']}" in constraints
    templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
        gpus = group["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)
        image = group["template"]["spec"]["containers"][0]["image"]
        assert image.endswith("-cuda" if gpus else "-cpu"), f"{group['groupName']}: {image}"
    for template in templates:
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["CAUSALPRINT__STORAGE__ROOT"]["value"].startswith("s3://")
        assert env["CAUSALPRINT__MLFLOW__TRACKING_URI"]["value"].startswith("http")
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "causalprint-s3"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"  # Ray's object store in memory


def test_the_job_runs_an_entry_point_of_jobs_with_a_valid_runtime_env() -> None:
    spec = manifest("RayJob")["spec"]
    words = shlex.split(spec["entrypoint"])
    assert words[:2] == ["python", f"{IMAGE_WORKDIR}/jobs/run.py"] and (REPO / "jobs" / "run.py").is_file()
    build_parser().parse_args(words[2:])  # jobs/run.py runs `causalprint JOB ARGS`: a command that parses
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert set(runtime_env) <= RuntimeEnv.known_fields
    RuntimeEnv(**runtime_env)  # types checked by Ray itself
    assert spec["shutdownAfterJobFinishes"] is True


def test_the_service_deploys_serve_config_yaml_open_to_the_network_with_keys() -> None:
    spec = manifest("RayService")["spec"]
    serve_config = yaml.safe_load(spec["serveConfigV2"])
    check_serve_config(serve_config, yaml.safe_load((REPO / "serve" / "config.yaml").read_text()))
    # The same application as the compose stack's.
    assert serve_config == yaml.safe_load((REPO / "infra" / "compose" / "serve-config.yaml").read_text())
    container = spec["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    keys = next(e for e in container["env"] if e["name"] == "CAUSALPRINT_API_KEYS")
    assert keys["valueFrom"]["secretKeyRef"]["name"] == "causalprint-api-keys"
