"""Old import path of :class:`causalprint.scan.image_attributor.ImageAttributor` for enrolment/job.py; delete this
module once it imports the new path."""

from causalprint.scan.image_attributor import ImageAttributor as AttributionPipeline

__all__ = ["AttributionPipeline"]
