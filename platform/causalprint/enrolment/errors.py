"""The one error an enrolment raises for a refusal the user can fix (names, model, images)."""

from __future__ import annotations


class EnrolmentError(ValueError):
    """An enrolment was refused; the message says what to change. Nothing was registered."""
