"""``causalprint unseen``: generated images of a family never seen, held out whole, in turn; the head's AUROC, the
share answered as generated and the real class's share kept real. The engine is
:mod:`causalprint.evaluation.unseen_family`."""

from __future__ import annotations

from pathlib import Path

from causalprint.evaluation.unseen_family import UnseenFamilyRow, UnseenJobConfig, format_unseen, run_unseen
from causalprint.jobs.spec import Section

CONFIG = UnseenJobConfig


def run(config: UnseenJobConfig) -> list[UnseenFamilyRow]:
    return run_unseen(config)


def describe(rows: list[UnseenFamilyRow]) -> str:
    return "\n".join(
        f"{r.family} ({', '.join(r.held_out)}): head AUROC {r.auroc:.3f}, answered generated "
        f"{100 * r.generated_share:.1f} %, real kept real {100 * r.real_kept:.1f} % (prototypes alone: "
        f"{100 * r.proto_generated_share:.1f} % / {100 * r.proto_real_kept:.1f} %)"
        for r in rows
    )


def section(config: UnseenJobConfig, rows: list[UnseenFamilyRow], preset: str, docs_dir: Path) -> Section:
    return Section(
        f"unseen-family-{preset}",
        "Generated, from a family never seen (whole families held out)",
        format_unseen(config.unseen, rows),
    )
