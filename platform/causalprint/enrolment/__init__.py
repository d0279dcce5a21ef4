"""Enrolment of a new source into a registered attributor from a few of its images, without retraining.

``register.enrol_images`` runs it and registers the result as a new version; the prototype arithmetic is
:mod:`causalprint.attribution.prototype_enrolment`.
"""
