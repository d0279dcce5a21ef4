"""One image's counterfactual: the smallest change of its pixels whose fingerprint code carries the target.

1. Encode the image to its fingerprint code; the source the attributor names is the one to remove.
2. Take the counterfactual code: the real class's prototype (``real``), a chosen source's (forgery), or, for a
   model without a real class, the direction away from the named source's prototype (``away``).
3. Projected signed-gradient steps on the pixels (L-infinity ball of ``max_change`` levels) raise the code's
   cosine to the target prototype and lower it to the named source's, averaged over residual noise draws.
4. Every ``check_every`` steps the image is quantised to uint8 and attributed through the scan's own path; the
   search stops once the named source is no longer named (forgery: once the target is).
5. The result is quantised to uint8, encoded as PNG and decoded again before it is scored.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from causalprint.anonymization.config import AWAY, REAL, AnonymizationError, AnonymizeOptions
from causalprint.anonymization.path import FingerprintPath
from causalprint.attribution.model import CausalDecoupler
from causalprint.extraction.actors import image_seeds
from causalprint.scan.image_attributor import ImageAttributor as AttributionPipeline


@dataclass(frozen=True)
class Anonymized:
    """The counterfactual image (uint8 ``[S, S, 3]``, as decoded from ``png``) and what changed."""

    image: np.ndarray
    png: bytes
    before: dict[str, Any]
    after: dict[str, Any]
    target: str
    removed: str | None
    psnr: float
    ssim: float
    max_change: int
    steps: int
    seconds: float

    @property
    def succeeded(self) -> bool:
        """The named source is no longer named (forgery: the target is named)."""
        if self.removed is None:
            return False
        if self.target not in (REAL, AWAY):
            return self.after["predicted"] == self.target
        return self.after["predicted"] != self.removed

    def report(self) -> dict[str, Any]:
        keep = ("predicted", "source_family", "unknown", "confidence")
        return {
            "target": self.target,
            "removed": self.removed,
            "succeeded": self.succeeded,
            "before": {k: self.before[k] for k in keep},
            "after": {k: self.after[k] for k in keep},
            "psnr": self.psnr if np.isfinite(self.psnr) else None,
            "ssim": self.ssim,
            "max_change": self.max_change,
            "steps": self.steps,
            "seconds": self.seconds,
        }


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=min(7, a.shape[0] // 2 * 2 - 1)))


def png_round_trip(image: np.ndarray) -> tuple[bytes, np.ndarray]:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    data = buffer.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)


def _to_unit(image: np.ndarray) -> torch.Tensor:
    copy = np.array(image, dtype=np.uint8)  # Ray Data hands read-only arrays, which torch will not wrap
    return torch.from_numpy(copy).permute(2, 0, 1).float().div(127.5).sub(1)[None]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


@dataclass(frozen=True)
class _Objective:
    """One attributor's code term: its decoder-free encoder, prototypes and the classes to leave and to reach."""

    model: CausalDecoupler
    centers: torch.Tensor  # unit prototypes [K, F]
    temperature: float
    source: int
    target: int | None  # None: away from the source only

    @classmethod
    def of(cls, pipeline: AttributionPipeline, removed: str, target: str, device: torch.device) -> _Objective:
        calibration = pipeline.attributor.calibration
        names = [str(n) for n in calibration.prototypes.labels_]
        for label in (removed, *([] if target == AWAY else [target])):
            if label not in names:
                raise AnonymizationError(f"the model knows no source {label!r} (it knows {', '.join(names)})")
        return cls(
            model=pipeline.attributor.model,
            centers=torch.from_numpy(np.asarray(calibration.prototypes.centers_)).float().to(device),
            temperature=float(calibration.proto_temperature),
            source=names.index(removed),
            target=None if target == AWAY else names.index(target),
        )

    def loss(self, features: torch.Tensor, kind: str) -> torch.Tensor:
        model = self.model.eval()
        mu_fp = model.encode_standardised(model.standardise(features))[0]
        similarity = torch.nn.functional.normalize(mu_fp, dim=1) @ self.centers.T
        if kind == "probability":
            log_p = torch.log_softmax(similarity / self.temperature, dim=1).mean(dim=0)
            return log_p[self.source] - (log_p[self.target] if self.target is not None else 0)
        mean = similarity.mean(dim=0)
        return mean[self.source] - (mean[self.target] if self.target is not None else 0)


def anonymize(
    pipeline: AttributionPipeline,
    image: np.ndarray,
    options: AnonymizeOptions | None = None,
    path: FingerprintPath | None = None,
    surrogates: Sequence[AttributionPipeline] = (),
) -> Anonymized:
    """The counterfactual of one canonical image (uint8 ``[S, S, 3]``); deterministic for a given seed.

    ``surrogates``: more attributors of the same feature path (other seeds) whose code terms are averaged with
    ``pipeline``'s, so that the change holds for attributors the optimiser never saw; ``pipeline`` alone decides
    when to stop and is the one the result reports."""
    options = options or AnonymizeOptions()
    start = time.perf_counter()
    path = path or FingerprintPath(pipeline)
    for other in surrogates:
        if list(other.spec.columns) != list(pipeline.spec.columns):
            raise AnonymizationError(
                f"a surrogate reads columns {list(other.spec.columns)}, the attributor {list(pipeline.spec.columns)}: "
                "surrogates must share the attributor's feature path"
            )
    before = pipeline.attribute_images(image[None])[0]
    named = before["predicted"]
    removed = named if named in pipeline.class_names else None  # a family fallback or unknown names no source
    if options.target == REAL and REAL not in pipeline.class_names:
        raise AnonymizationError(f"the model has no {REAL!r} class; use target {AWAY!r}")
    if options.target not in (REAL, AWAY) and options.target not in pipeline.class_names:
        raise AnonymizationError(
            f"target {options.target!r} is not a source of the model ({', '.join(pipeline.class_names)})"
        )
    done = (removed is None or removed == options.target) if options.target != AWAY else removed is None
    x0 = _to_unit(image).to(path.device)
    best = x0
    steps = 0
    if not done:
        assert removed is not None  # not done: the model named a source to remove
        objectives = [_Objective.of(p, removed, options.target, path.device) for p in (pipeline, *surrogates)]
        eps, alpha = 2 * options.max_change / 255, 2 * options.step_size / 255
        # PSNR = 20 log10(255 / rms) on uint8 levels; one level is 2 / 255 on the [-1, 1] scale.
        rms = None if options.psnr_floor is None else 2 / 10 ** (options.psnr_floor / 20)
        generator = torch.Generator().manual_seed(options.seed)
        own = image_seeds(image[None])

        def draws() -> torch.Tensor:
            return torch.cat([own, torch.randint(0, 2**31 - 1, (options.noise_draws - 1,), generator=generator)])

        counterfactual = None
        if options.feature_weight > 0 and options.target != AWAY:
            ours = objectives[0]  # its prototypes were checked when the objective was built
            assert ours.target is not None  # not away: a named target
            target = ours.centers[ours.target]
            with torch.no_grad():
                first = draws()
                counterfactual = path.counterfactual_features(
                    path.features(x0.expand(len(first), -1, -1, -1), first), target
                ).mean(dim=0)
        delta = torch.zeros_like(x0, requires_grad=True)
        succeeded = 0  # checks that succeeded so far
        for steps in range(1, options.steps + 1):
            seeds = draws()
            features = path.features((x0 + delta).clamp(-1, 1).expand(len(seeds), -1, -1, -1), seeds)
            loss = torch.stack([o.loss(features, options.loss) for o in objectives]).mean()
            if counterfactual is not None:
                distance = ((features - counterfactual) / path.model.x_std).pow(2).mean()
                loss = loss + options.feature_weight * distance
            (grad,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta -= alpha * grad.sign()
                delta.clamp_(-eps, eps)
                if rms is not None:
                    delta.mul_(torch.clamp(rms / delta.pow(2).mean().sqrt().clamp_min(1e-12), max=1.0))
                delta.copy_((x0 + delta).clamp(-1, 1) - x0)
            if steps % options.check_every == 0 or steps == options.steps:
                candidate = _to_unit(_to_uint8(x0 + delta.detach())).to(path.device)
                decision = pipeline.attribute_images(_to_uint8(candidate)[None])[0]["predicted"]
                if (decision == options.target) if options.target not in (REAL, AWAY) else decision != removed:
                    best, succeeded = candidate, succeeded + 1
                    if succeeded > options.settle:
                        break
                elif not succeeded:
                    best = candidate  # nothing succeeded yet: the furthest change so far
    png, result = png_round_trip(_to_uint8(best))
    after = pipeline.attribute_images(result[None])[0]
    return Anonymized(
        image=result,
        png=png,
        before=before,
        after=after,
        target=options.target,
        removed=removed,
        psnr=psnr(image, result),
        ssim=ssim(image, result),
        max_change=int(np.abs(image.astype(int) - result.astype(int)).max()),
        steps=steps,
        seconds=round(time.perf_counter() - start, 3),
    )
