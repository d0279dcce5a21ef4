"""Old import path of the names that cli.py, causalprint/pipeline.py and enrolment/ still import from here.

The MLflow side moved to :mod:`causalprint.tracking` (``versions``, ``gate``, ``artifacts``) and the job to
:mod:`causalprint.attribution.train_job`. Delete this module once those three import the new paths.
"""

from causalprint.attribution.train_job import TrainRegisterJobConfig, format_training, train_and_register
from causalprint.tracking.artifacts import ARTIFACT_PATH, REPORT_PATH, LoadedAttributor
from causalprint.tracking.versions import CANDIDATE, CHAMPION, RegisteredVersion, log_version, parse_model_uri

__all__ = [
    "ARTIFACT_PATH", "CANDIDATE", "CHAMPION", "format_training", "LoadedAttributor", "log_version",
    "parse_model_uri", "RegisteredVersion", "REPORT_PATH", "train_and_register", "TrainRegisterJobConfig",
]
