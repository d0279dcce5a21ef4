"""Generated or real, whatever the source: a head trained on the zoo's many generators against real images.

The prototype decision names a source, or says "unknown". An image of a generator family that training never
saw lies far from every generator prototype, and often nearest to real: the real prototype absorbs what it has
not seen. This head asks the other question, generated or not, from the input feature columns (the ones that
generalise across families, named by the preset), so that such an image can be answered "generated (source
unknown)" rather than real (:meth:`~causalprint.attribution.openset.OpenSetAttributor.decide`).

1. Input: the chosen columns of the attributor's input vector, standardised with the real train rows' statistics.
2. Model: a logistic score (``hidden = 0``) or one hidden layer, trained full-batch on every known train row
   (architecture-only instances included: they are generators too), real against generated. Each generator
   source weighs the same, and all generators together weigh as much as real, so no one family dominates.
3. Threshold: the ``keep_real`` quantile of the scores of the real *validation* rows, so that that share of real
   images stays real (``score > threshold``: generated).

A head is a folder: ``generated.json`` (options, columns, threshold) + ``generated.safetensors``; never a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import Field
from safetensors.numpy import load_file, save_file

from causalprint.attribution.dataset import AttributionData
from causalprint.attribution.openset import REAL_FAMILY, UNKNOWN, Attribution
from causalprint.config import StrictModel

__all__ = [
    "GENERATED_NAME",
    "GENERATED_UNKNOWN",
    "GeneratedHead",
    "GeneratedHeadOptions",
    "answer_generated",
    "fit_generated_head",
]

GENERATED_NAME = "generated"  # generated.json + generated.safetensors in an attributor folder
REAL = "real"
GENERATED_UNKNOWN = "generated (source unknown)"


class GeneratedHeadOptions(StrictModel):
    """How the generated-vs-real head is built and where its threshold sits."""

    columns: list[str] | None = Field(
        default=None, description="input columns the head reads (None: every column of the attributor)"
    )
    hidden: int = Field(default=0, ge=0, description="0: a logistic score; else one hidden layer of this width")
    steps: int = Field(default=300, ge=1, description="full-batch optimiser steps")
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    keep_real: float = Field(
        default=0.97, gt=0, lt=1, description="share of the real validation rows the threshold keeps real"
    )
    seed: int = 0


@dataclass
class GeneratedHead:
    """A fitted head: ``score(x)`` ``[N]`` (higher: more likely generated) over the attributor's raw input
    ``x`` ``[N, D]``; ``threshold`` splits it (``score > threshold``: generated)."""

    options: GeneratedHeadOptions
    columns: list[str]
    index: np.ndarray  # [d] int64: where the head's columns lie in the attributor's input
    tensors: dict[str, np.ndarray]  # mean, std [d]; w1 [d, H], b1 [H] (hidden > 0); w [H or d], b [1]
    threshold: float
    fitted: dict[str, float]  # counts and shares at fitting time, for the record

    def score(self, x: np.ndarray) -> np.ndarray:
        """Logit of "generated" per row of raw input vectors ``[N, D]``."""
        t = self.tensors
        z = (np.asarray(x, dtype=np.float32)[:, self.index] - t["mean"]) / t["std"]
        if "w1" in t:
            z = np.maximum(z @ t["w1"] + t["b1"], 0.0)
        return (z @ t["w"] + t["b"][0]).astype(np.float64)

    def is_generated(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) > self.threshold

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: np.ascontiguousarray(v) for k, v in {**self.tensors, "index": self.index}.items()},
            str(directory / f"{GENERATED_NAME}.safetensors"),
        )
        meta = {
            "format_version": 1,
            "options": self.options.model_dump(),
            "columns": self.columns,
            "threshold": self.threshold,
            "fitted": self.fitted,
        }
        (directory / f"{GENERATED_NAME}.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> GeneratedHead | None:
        """The head saved in ``directory``, or None when the folder has none (a model trained before heads)."""
        directory = Path(directory)
        path = directory / f"{GENERATED_NAME}.json"
        if not path.exists():
            return None
        meta = json.loads(path.read_text())
        tensors = load_file(str(directory / f"{GENERATED_NAME}.safetensors"))
        index = tensors.pop("index").astype(np.int64)
        return cls(
            options=GeneratedHeadOptions(**meta["options"]),
            columns=list(meta["columns"]),
            index=index,
            tensors=tensors,
            threshold=float(meta["threshold"]),
            fitted={k: float(v) for k, v in meta["fitted"].items()},
        )


def _column_index(columns: Sequence[str], dims: Sequence[int], wanted: Sequence[str]) -> np.ndarray:
    starts = np.r_[0, np.cumsum(dims)[:-1]].astype(np.int64)
    where = {c: (int(s), int(d)) for c, s, d in zip(columns, starts, dims)}
    missing = [c for c in wanted if c not in where]
    if missing:
        raise ValueError(f"generated head columns {missing} are not among the attributor's input {list(columns)}")
    return np.concatenate([np.arange(where[c][0], where[c][0] + where[c][1]) for c in wanted])


def fit_generated_head(data: AttributionData, options: GeneratedHeadOptions | None = None) -> GeneratedHead:
    """Fit the head on ``data``'s train rows (module docstring) and its threshold on the real validation rows."""
    options = options or GeneratedHeadOptions()
    if REAL not in data.class_names:
        raise ValueError(f"a generated head needs the class {REAL!r}; classes: {data.class_names}")
    real = data.class_names.index(REAL)
    columns = list(options.columns or data.columns)
    index = _column_index(data.columns, data.column_dims, columns)
    groups = data.y_train  # the class index, or an architecture-only row's (negative) architecture label
    generated = groups != real
    if generated.all() or not generated.any():
        raise ValueError("a generated head needs real and generated train rows")
    # 1. inputs, standardised with the real train rows' statistics: a unit is a deviation from real, whatever
    # mixture of generators the train rows hold (their own spread would shrink a trace that every one shares)
    x = data.x_train[:, index].astype(np.float32)
    mean, std = x[~generated].mean(0), x[~generated].std(0) + 1e-6
    z = torch.from_numpy((x - mean) / std)
    y = torch.from_numpy(generated.astype(np.float32))
    # 2. weights: every generator group the same, all generators together as much as real
    gen_groups = np.unique(groups[generated])
    weight = np.zeros(len(groups), dtype=np.float32)
    weight[~generated] = 0.5 / (~generated).sum()
    for g in gen_groups:
        rows = groups == g
        weight[rows] = 0.5 / len(gen_groups) / rows.sum()
    w = torch.from_numpy(weight)
    torch.manual_seed(options.seed)
    d = z.shape[1]
    layers: list[torch.nn.Module] = []
    if options.hidden:
        layers += [torch.nn.Linear(d, options.hidden), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(options.hidden or d, 1))
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    for _ in range(options.steps):
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(net(z)[:, 0], y, reduction="none") * w).sum()
        loss.backward()
        opt.step()
    linear = [m for m in net if isinstance(m, torch.nn.Linear)]
    tensors = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    if options.hidden:
        tensors["w1"] = linear[0].weight.detach().numpy().T.copy()
        tensors["b1"] = linear[0].bias.detach().numpy().copy()
    tensors["w"] = linear[-1].weight.detach().numpy()[0].copy()
    tensors["b"] = linear[-1].bias.detach().numpy().copy()
    head = GeneratedHead(options, columns, index, tensors, threshold=0.0, fitted={})
    # 3. the threshold: keep_real of the real validation rows stay real
    real_val = data.x_val[data.y_val == real]
    if not len(real_val):
        raise ValueError("a generated head's threshold needs real validation rows")
    real_scores = head.score(real_val)
    head.threshold = float(np.quantile(real_scores, options.keep_real, method="higher"))
    gen_val = data.x_val[data.y_val != real]
    head.fitted = _fitted(head, real_scores, head.score(gen_val) if len(gen_val) else np.zeros(0), float(loss.detach()))
    return head


def _fitted(head: GeneratedHead, real_scores: np.ndarray, gen_scores: np.ndarray, loss: float) -> dict[str, float]:
    return {
        "train_loss": loss,
        "val_real_rows": float(len(real_scores)),
        "val_real_kept": float((~head.is_generated(real_scores)).mean()),
        "val_generated_rows": float(len(gen_scores)),
        "val_generated_caught": float(head.is_generated(gen_scores).mean()) if len(gen_scores) else float("nan"),
    }


def answer_generated(
    decisions: Sequence[Attribution],
    probabilities: np.ndarray,
    names: Sequence[str],
    families: dict[str, str],
    generated_scores: np.ndarray,
    threshold: float,
    family_threshold: float = 0.9,
) -> list[Attribution]:
    """The open-set decisions ``decisions`` (one per row of calibrated ``probabilities`` ``[N, K]`` over ``names``)
    revised by the head's scores ``[N]``: a row the head calls generated (``score > threshold``) that was answered
    with the real class or "unknown" is answered with a model family, when the family's share of the generated
    classes' probability passes ``family_threshold``, else "generated (source unknown)". So real stays real only
    when the head agrees, and an image the head calls generated is never answered with the family real. A row
    left "unknown" stays unknown when the head calls it real (answering it real would read an unseen family that
    fools the head as a photograph: on the demo features it did, for 92 % of a held-out family). Rows answered
    with a generator or a generator family keep their answer (a known prototype is the stronger evidence)."""
    scores = np.asarray(generated_scores, dtype=np.float64)
    generated = scores > threshold
    model_families = sorted({families[n] for n in names if families.get(n, REAL_FAMILY) != REAL_FAMILY})
    members = {f: [i for i, n in enumerate(names) if families.get(n) == f] for f in model_families}
    out = []
    for i, decision in enumerate(decisions):
        realish = decision.label == UNKNOWN or decision.family == REAL_FAMILY
        if not generated[i] or not realish:
            out.append(decision)
            continue
        p_gen = probabilities[i, [k for f in model_families for k in members[f]]].sum()
        shares = {f: probabilities[i, members[f]].sum() / max(p_gen, 1e-12) for f in model_families}
        best = max(shares, key=lambda f: shares[f]) if shares else None
        confidence = float(1.0 / (1.0 + np.exp(-scores[i])))  # the head's own probability
        if best is not None and shares[best] >= family_threshold:
            out.append(Attribution(f"{best} (exact model unknown)", confidence, False, best, decision.score))
        else:
            out.append(Attribution(GENERATED_UNKNOWN, confidence, False, None, decision.score))
    return out
