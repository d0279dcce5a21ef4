"""Enrolment of a new source into a registered attributor from a few of its images, without retraining.

``job.run_enrolment`` runs it and registers the result as a new version; the prototype arithmetic is
:mod:`causalprint.attribution.enrolment`.
"""
