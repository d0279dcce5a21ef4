"""Old import path of :mod:`causalprint.attribution.prototype_enrolment` for enrolment/job.py; delete this module
once it imports the new path."""

from causalprint.attribution.prototype_enrolment import EnrolmentCheck, check_names, enrol_source, enrolled_sources

__all__ = ["check_names", "EnrolmentCheck", "enrol_source", "enrolled_sources"]
