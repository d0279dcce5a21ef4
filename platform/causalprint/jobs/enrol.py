"""``causalprint enrol``: add a new source to a registered attributor from a few of its images, as a new
version, without retraining (:mod:`causalprint.enrolment.register`; the service's enrol endpoint runs the same)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from causalprint.enrolment.config import EnrolJobConfig
from causalprint.enrolment.register import enrol_images
from causalprint.text import printable

CONFIG = EnrolJobConfig


def run(job: EnrolJobConfig) -> dict[str, Any]:
    return enrol_images(job)


def _share(value: float | None, n: int) -> str:
    return "n/a (one image)" if value is None else f"{round(value * n)} of {n} ({100 * value:.0f} %)"


def describe(summary: Mapping[str, Any]) -> str:
    """What a person reads after ``causalprint enrol``: the new version, what was read, and the check."""
    check = summary["check"]
    lines = [
        f"enrolled {check['source']!r} ({check['family']}) into {summary['enrolled_from']}: new version "
        f"{summary['model']} (alias {summary['alias']}), weights unchanged",
        f"{summary['listed']} files under {summary['images']}: {summary['read']} read, "
        f"{len(summary['unreadable'])} unreadable",
    ]
    lines += [f"  {printable(e['uri'])}: {e['error_kind']} ({printable(e['error'])})" for e in summary["unreadable"]]
    n = check["samples"]
    lines.append(
        f"leave-one-out on the enrolment images: nearest to {check['source']!r} "
        f"{_share(check['loo_top1'], n)}; also past the threshold it will use "
        f"{_share(check['loo_accepted'], n)}"
    )
    if check["threshold"] is not None:
        lines.append(
            f"its own unknown threshold (cosine to its prototype): {check['threshold']:.3f}, fitted on "
            f"enrolment images, so the line above is not an independent check"
        )
    else:
        lines.append("it uses the shared unknown threshold (its own needs more images nearest to it)")
    if check["loo_top1"] is not None and check["loo_top1"] < 0.5:
        lines.append(
            f"WARNING: fewer than half of the images are nearest to the new prototype: the attributor "
            f"does not tell {check['source']!r} apart well"
        )
    if check["nearest_class"] is not None:
        lines.append(
            f"closest other prototype: {check['nearest_class']} (cosine {check['nearest_similarity']:.3f}; "
            f"near 1 means the two cannot be told apart)"
        )
    lines += [
        f"enrolled sources of this version: {', '.join(summary['enrolled_sources'])}",
        f"scan with it: causalprint scan SOURCE --model {summary['model']}",
        f"took {summary['seconds']} s",
    ]
    return "\n".join(lines)
