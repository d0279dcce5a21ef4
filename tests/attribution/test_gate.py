"""The promotion gate: thresholds, the comparison with the champion, and the refusal of a candidate that answers
another question (other classes or input columns) unless the job replaces the champion's task (the world:
registered_world)."""

from __future__ import annotations

import json

import pytest
from registered_world import synthetic_data, tracking_store, trained
from test_training import COLUMNS

from causalprint.attribution.dataset import AttributionData
from causalprint.storage import Storage
from causalprint.tracking.gate import GateConfig, Task, promote_if_better, task_differences
from causalprint.tracking.versions import MODEL_NAME, register_version


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Storage, AttributionData, str]:
    """(storage, its synthetic data, the MLflow store's URI)."""
    storage, uri = tracking_store(tmp_path_factory.mktemp("gate"))
    return storage, synthetic_data(storage), uri


def _alias(client, alias: str, model_name: str = MODEL_NAME) -> str:
    return str(client.get_model_version_by_alias(model_name, alias).version)


def test_versions_aliases_and_the_gate(store) -> None:
    import mlflow

    _, data, uri = store
    client = mlflow.MlflowClient(uri)
    medium = trained(data, "medium", epochs=1, lr=1e-2, tracking_uri=uri)
    bad = trained(data, "bad", epochs=1, lr=1e-5, tracking_uri=uri)
    good = trained(data, "good", epochs=4, lr=1e-2, tracking_uri=uri)
    acc = {r.name: r.metrics["test_accuracy"] for r in (medium, bad, good)}
    assert acc["bad"] < 0.5 <= acc["medium"] < acc["good"], acc
    gate = GateConfig(
        minimum={"test_accuracy": 0.5},
        maximum={"test_ece": 0.5},
        compare={"test_accuracy": "higher", "test_nll": "lower"},
        tolerance=0.0,
    )

    # 1. The first version becomes candidate, then champion: nothing to compare with yet.
    v1 = register_version(medium, client=client)
    assert v1.version == "1" and _alias(client, "candidate") == "1"
    first = promote_if_better(client, v1, thresholds=gate)
    assert first.promoted and first.champion_before is None, first.reasons
    assert _alias(client, "champion") == "1"
    # The version's run holds the evaluation metrics the gate reads, and the version is tagged with its inputs.
    mv = client.get_model_version(MODEL_NAME, "1")
    assert client.get_run(mv.run_id).data.metrics["test_accuracy"] == pytest.approx(acc["medium"])
    assert mv.tags["reference_id"] == "ref-1" and json.loads(mv.tags["columns"]) == list(COLUMNS)
    assert mv.tags["gate.decision"] == "promoted"
    assert not promote_if_better(client, v1, thresholds=gate).promoted  # already champion

    # 2. A worse model: registered (candidate moves), refused by the gate (champion stays).
    v2 = register_version(bad, client=client)
    assert _alias(client, "candidate") == "2"
    refused = promote_if_better(client, v2, thresholds=gate)
    assert not refused.promoted and refused.champion_before == "1"
    failed = [r for r in refused.reasons if r.startswith("FAIL")]
    assert any("minimum 0.5" in r for r in failed) and any("vs champion v1" in r for r in failed), refused.reasons
    assert _alias(client, "champion") == "1"
    assert client.get_model_version(MODEL_NAME, "2").tags["gate.decision"] == "refused"

    # 3. A better model is promoted over the champion.
    v3 = register_version(good, client=client)
    accepted = promote_if_better(client, v3.version, thresholds=gate)
    assert accepted.promoted and accepted.champion_before == "1", accepted.reasons
    assert _alias(client, "champion") == "3"
    # Explicit metrics override the run's: a gate threshold the version cannot meet is refused.
    assert not promote_if_better(
        client, v1, {"test_accuracy": 0.99, "test_nll": 0.0, "test_ece": 0.9}, thresholds=gate
    ).promoted

    # A tolerance forgives a regression up to its size and no more, and the reason names it.
    held = client.get_run(client.get_model_version(MODEL_NAME, "3").run_id).data.metrics["test_accuracy"]
    lenient = GateConfig(minimum={}, compare={"test_accuracy": "higher"}, tolerance=0.001)
    assert not promote_if_better(client, v2, {"test_accuracy": held - 0.002}, thresholds=lenient).promoted
    assert _alias(client, "champion") == "3"
    near = promote_if_better(client, v2, {"test_accuracy": held - 0.0005}, thresholds=lenient)
    assert near.promoted and any("within 0.001" in r for r in near.reasons), near.reasons


def test_task_differences_name_what_differs() -> None:
    champion = Task(frozenset({"real", "sd-a", "sd-b"}), frozenset({"one_step.dct", "one_step.rgb"}))
    assert task_differences(Task(frozenset({"sd-b", "real", "sd-a"}), champion.columns), champion) == []
    other = Task(frozenset({"real", "sd-a", "new"}), frozenset({"one_step.dct"}))
    assert task_differences(other, champion) == [
        "classes differ: the candidate lacks ['sd-b'] and adds ['new']",
        "input columns differ: the candidate lacks ['one_step.rgb'] and adds []",
    ]


def test_a_candidate_of_another_task_is_refused_unless_it_replaces_the_task(store) -> None:
    import mlflow

    storage, data, uri = store
    client = mlflow.MlflowClient(uri)
    name = "attributor-tasks"
    fewer = synthetic_data(storage, held_out=("gan-a", "sd-b"))  # sd-b is no class: it would go unnamed
    narrower = synthetic_data(storage, columns=["one_step.dct"])
    assert data.class_names == ["real", "sd-a", "sd-b"] and fewer.class_names == ["real", "sd-a"]
    assert narrower.class_names == data.class_names and narrower.columns != data.columns == list(COLUMNS)
    gate = GateConfig(minimum={"test_accuracy": 0.5}, compare={"test_accuracy": "higher"})

    champion = register_version(
        trained(data, "three", epochs=1, lr=1e-2, tracking_uri=uri), model_name=name, client=client
    )
    assert promote_if_better(client, champion, thresholds=gate, model_name=name).promoted

    # 1. A model of two of the three classes, at least as accurate on its own test rows: every metric passes,
    #    and it is refused for the class it lacks.
    two = register_version(trained(fewer, "two", epochs=4, lr=1e-2, tracking_uri=uri), model_name=name, client=client)
    refused = promote_if_better(client, two, thresholds=gate, model_name=name)
    assert not refused.promoted and _alias(client, "champion", name) == champion.version
    assert [r for r in refused.reasons if r.startswith("FAIL")] == [
        f"FAIL: classes differ: the candidate lacks ['sd-b'] and adds [] (champion v{champion.version}): it "
        f"answers another question; set gate.replace_task=true to replace the champion's task"
    ]
    assert any(r.startswith("ok: test_accuracy=") and "vs champion" in r for r in refused.reasons), refused.reasons
    tags = client.get_model_version(name, two.version).tags
    assert tags["gate.decision"] == "refused" and json.loads(tags["gate.reasons"]) == refused.reasons

    # 2. The same classes read from one of the two columns: refused for the column it lacks.
    one_column = register_version(
        trained(narrower, "one-column", epochs=4, lr=1e-2, tracking_uri=uri), model_name=name, client=client
    )
    refused = promote_if_better(client, one_column, thresholds=gate, model_name=name)
    failed = [r for r in refused.reasons if r.startswith("FAIL")]
    assert not refused.promoted and not any("classes differ" in r for r in refused.reasons), refused.reasons
    assert any("input columns differ: the candidate lacks ['one_step.rgb'] and adds []" in r for r in failed)

    # 3. The job says it replaces the task: the thresholds still hold, the champion's metrics (of another task)
    #    are not compared, and the candidate becomes champion.
    replace = gate.model_copy(update={"replace_task": True})
    assert not promote_if_better(client, two, {"test_accuracy": 0.4}, thresholds=replace, model_name=name).promoted
    replaced = promote_if_better(client, two, thresholds=replace, model_name=name)
    assert replaced.promoted and replaced.champion_before == champion.version, replaced.reasons
    assert _alias(client, "champion", name) == two.version
    assert (
        f"ok: classes differ: the candidate lacks ['sd-b'] and adds [] (champion v{champion.version}); "
        f"gate.replace_task replaces its task"
    ) in replaced.reasons
    assert not any("vs champion" in r for r in replaced.reasons), replaced.reasons

    # 4. Against a champion of its own task, a candidate is compared as before.
    same = register_version(
        trained(fewer, "two-again", epochs=4, lr=1e-2, tracking_uri=uri), model_name=name, client=client
    )
    again = promote_if_better(client, same, thresholds=replace, model_name=name)
    assert f"ok: the classes and input columns of champion v{two.version}" in again.reasons
    assert any("vs champion" in r for r in again.reasons), again.reasons
