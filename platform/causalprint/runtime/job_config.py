"""The base of every job's config: where data lives (storage), where work runs (Ray) and where runs and models
are recorded (MLflow), each held once. A job's config adds its own sections on top."""

from __future__ import annotations

from causalprint.config import StrictModel
from causalprint.runtime.ray_local import RayConfig
from causalprint.storage.config import StorageConfig
from causalprint.tracking.mlflow_setup import MlflowConfig

SHARED_SECTIONS = ("storage", "ray", "mlflow")


class JobConfig(StrictModel):
    """Storage, Ray and MLflow: the sections every job shares (the main job passes them to each stage)."""

    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    mlflow: MlflowConfig = MlflowConfig()

    def shared(self) -> dict[str, object]:
        """The shared sections, to build another job's config on the same platform."""
        return {name: getattr(self, name) for name in SHARED_SECTIONS}
