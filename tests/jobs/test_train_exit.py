"""`causalprint train` exits 1 when the gate refused its model, so a train-then-deploy pipeline stops there."""

from __future__ import annotations

from causalprint.jobs import train


def test_a_refused_gate_fails_the_command_and_no_gate_asked_does_not() -> None:
    assert train.exit_code({"promoted": False, "gate": ["FAIL test_accuracy 0.4 < minimum 0.95"]}) == 1
    assert train.exit_code({"promoted": True, "gate": []}) == 0
    assert train.exit_code({"model": "models:/m/1"}) == 0  # promote: false, no gate asked
