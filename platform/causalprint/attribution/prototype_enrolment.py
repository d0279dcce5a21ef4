"""Enrolment: a source the attributor was never trained on joins it from a few of its images, as one more
prototype in fingerprint space. The encoder, the classifier and the calibration stay as trained, so nothing is
retrained and every trained class keeps its prototype.

Only the prototype decision path knows an enrolled source (the classifier's logits cover the trained classes);
the scan decides by prototypes by default.

An enrolled source also gets its own unknown threshold. The shared one was fitted on validation rows of the
trained classes, whose codes the training pulled tight around their prototypes; a source the encoder never
learned spreads wider, and the shared threshold would turn most of its images into "unknown". Its own
threshold accepts the calibration's target share (``target_tpr``) of its enrolment images, each scored against
its prototype rebuilt without it (leave-one-out, as an unseen image would score), and is never stricter than the
shared one. It is fitted only on the images whose nearest prototype is the new one (an image nearer another
class would be named that class whatever the threshold), and only when one enrolment brings
:data:`MIN_OWN_THRESHOLD` of them: with fewer, the loosest one or two images alone would set it, so the threshold
the source had stays (the shared one, at first). Up to 20 such images, the target share's quantile is the
loosest one's score.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from causalprint.attribution.openset import UNKNOWN, Prototypes, choose_unknown_threshold
from causalprint.enrolment.errors import EnrolmentError
from causalprint.tracking.artifacts import LoadedAttributor

__all__ = ["check_names", "EnrolmentCheck", "enrol_source", "enrolled_sources", "MIN_OWN_THRESHOLD"]

MIN_OWN_THRESHOLD = 10

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class EnrolmentCheck:
    """What the enrolled prototype will answer, measured on the enrolment images themselves.

    ``loo_top1``: share of the samples whose nearest prototype is the new class when that prototype is rebuilt
    without them (leave-one-out, so each sample scores as an unseen image of the source would); ``loo_accepted``:
    share that would also pass the threshold the class will use (its own is fitted on these same scores, so then
    this passes about ``target_tpr`` of the nearest ones by construction; with the shared one it is a real
    check); both None with one sample. ``threshold``: the class's own unknown threshold (None: the shared one).
    ``nearest_class``/``nearest_similarity``: the other prototype closest to the new one and their cosine (near
    1: the attributor cannot tell the new source from that class).
    """

    source: str
    family: str
    samples: int
    total_samples: int
    loo_top1: float | None
    loo_accepted: float | None
    threshold: float | None
    nearest_class: str | None
    nearest_similarity: float | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def enrolled_sources(attributor: LoadedAttributor) -> list[str]:
    """Prototype classes the model was not trained on, in enrolment order."""
    trained = set(attributor.calibration.class_names)
    return [str(label) for label in attributor.calibration.prototypes.labels_ if label not in trained]


def check_names(attributor: LoadedAttributor, source: str, family: str) -> None:
    """Refuse a source or family name that :func:`enrol_source` would refuse (before any image is read)."""
    for what, value in (("source", source), ("family", family)):
        if not _NAME.match(value) or value == UNKNOWN:
            raise EnrolmentError(
                f"{what} name {value!r} is not allowed: use 1-64 lower-case letters, digits, "
                f"'.', '_' or '-', starting with a letter or digit, and not {UNKNOWN!r}"
            )
    calibration = attributor.calibration
    if source in calibration.class_names:
        raise EnrolmentError(
            f"{source!r} is a trained class of this attributor (trained: "
            f"{', '.join(calibration.class_names)}); enrol a new source under another name"
        )
    known_family = calibration.families.get(source)
    if known_family is not None and known_family != family:
        raise EnrolmentError(f"{source!r} is already enrolled with family {known_family!r}, not {family!r}")


def enrol_source(
    attributor: LoadedAttributor, source: str, family: str, codes: np.ndarray
) -> tuple[LoadedAttributor, EnrolmentCheck]:
    """A copy of ``attributor`` whose prototypes also hold ``source`` (family ``family``), built from its
    fingerprint codes ``[n, F]``; enrolling an already enrolled source adds to its samples. ``attributor`` is not
    changed, and the copy's ``metrics`` are empty: no evaluation has measured it."""
    check_names(attributor, source, family)
    codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
    if codes.shape[0] == 0:
        raise EnrolmentError(f"enrolling {source!r} needs at least one image")
    if not np.isfinite(codes).all():
        raise EnrolmentError(f"the fingerprint codes of {source!r} hold non-finite values")
    prototypes = copy.deepcopy(attributor.calibration.prototypes)
    try:
        prototypes.enrol(source, codes)
    except ValueError as exc:  # codes of another width than the model's fingerprint
        raise EnrolmentError(str(exc)) from exc
    parent = attributor.calibration
    thresholds = dict(parent.proto_class_thresholds)
    k = prototypes.labels_.index(source)
    loo_top1 = loo_accepted = None
    if prototypes.counts_[k] >= 2:
        sims = prototypes.held_out_similarity(source, codes)
        nearest = sims.argmax(1) == k
        if nearest.sum() >= MIN_OWN_THRESHOLD:
            own = choose_unknown_threshold(sims[nearest, k], parent.target_tpr)
            # More samples of an enrolled source never make it stricter than it was.
            thresholds[source] = min(own, thresholds.get(source, parent.proto_threshold))
        loo_top1 = float(nearest.mean())
        loo_accepted = float((nearest & (sims[:, k] >= thresholds.get(source, parent.proto_threshold))).mean())
    # The copy's calibration and requirements are objects of its own; the model is shared, and neither changes it.
    calibration = dataclasses.replace(
        parent,
        prototypes=prototypes,
        families={**parent.families, source: family},
        proto_class_thresholds=thresholds,
        class_names=list(parent.class_names),
    )
    enrolled = dataclasses.replace(
        attributor, calibration=calibration, requirements=copy.deepcopy(attributor.requirements), metrics={}
    )
    check = EnrolmentCheck(
        source=source,
        family=family,
        samples=int(codes.shape[0]),
        total_samples=int(prototypes.counts_[k]),
        loo_top1=loo_top1,
        loo_accepted=loo_accepted,
        threshold=thresholds.get(source),
        **_nearest(prototypes, k),
    )
    return enrolled, check


def _nearest(prototypes: Prototypes, k: int) -> dict[str, Any]:
    """The prototype other than ``k`` closest to it, and their cosine (None without another)."""
    others = [i for i in range(len(prototypes.labels_)) if i != k]
    if not others:
        return {"nearest_class": None, "nearest_similarity": None}
    between = prototypes.centers_[others] @ prototypes.centers_[k]
    j = int(between.argmax())
    return {"nearest_class": str(prototypes.labels_[others[j]]), "nearest_similarity": float(between[j])}
