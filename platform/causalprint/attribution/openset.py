"""Open-set attribution: prototypes with few-shot enrolment, temperature scaling, an "unknown" threshold with a
family fallback, and the open-set metrics (AUROC, OSCR, ECE).

Scores follow one convention throughout: higher means "more likely a known source".
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from sklearn.metrics import roc_auc_score

__all__ = [
    "Attribution",
    "OpenSetAttributor",
    "Prototypes",
    "TemperatureScaler",
    "auroc",
    "choose_unknown_threshold",
    "expected_calibration_error",
    "oscr",
]

ArrayLike = np.ndarray | torch.Tensor | Sequence
UNKNOWN = "unknown"
# The real class's family. It is no model family, so it is never a fallback: an image that passes no threshold
# but lies nearest to real is unknown, never "real (exact model unknown)", which would read as a real photograph.
REAL_FAMILY = "real"


def _numpy(x: ArrayLike, dtype: type | None = np.float64) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return arr.astype(dtype) if dtype is not None else arr


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# ----- prototypes -----
class Prototypes:
    """One prototype per class: the re-normalised mean of the class's L2-normalised fingerprint codes.

    Sums and counts are kept, so :meth:`enrol` can add a class (or more samples of a class) without touching the
    other prototypes or retraining the encoder.
    """

    def __init__(self) -> None:
        self.labels_: list[Hashable] = []
        self._sums: np.ndarray | None = None  # [K, F] sums of normalised codes
        self.counts_: np.ndarray = np.zeros(0, dtype=np.int64)

    def fit(self, codes: ArrayLike, labels: ArrayLike) -> Prototypes:
        """Prototypes from codes ``[N, F]`` and labels ``[N]`` (sortable values of one type: ints or names)."""
        x = _numpy(codes)
        y = _numpy(labels, dtype=None)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ValueError(f"expected codes [N, F] and labels [N]; got {x.shape} and {y.shape}")
        self.labels_, self._sums, self.counts_ = [], np.zeros((0, x.shape[1])), np.zeros(0, dtype=np.int64)
        for label in np.unique(y):  # sorted, so integer labels 0..K-1 line up with the logits
            self.enrol(label, x[y == label])
        return self

    def enrol(self, label: Hashable, codes: ArrayLike) -> Prototypes:
        """Add ``codes`` ``[n, F]`` (a few samples suffice) to class ``label``, creating it if new."""
        x = _l2_normalise(np.atleast_2d(_numpy(codes)))
        label = label.item() if isinstance(label, np.generic) else label  # plain Python values stay JSON-able
        if x.shape[0] == 0:
            raise ValueError(f"enrolling {label!r} needs at least one code")
        if self._sums is None or self._sums.shape[0] == 0:
            self._sums = np.zeros((0, x.shape[1]))
        if x.shape[1] != self._sums.shape[1]:
            raise ValueError(f"codes have {x.shape[1]} dims, the prototypes {self._sums.shape[1]}")
        if label in self.labels_:
            k = self.labels_.index(label)
            self._sums[k] += x.sum(0)
            self.counts_[k] += x.shape[0]
        else:
            self.labels_.append(label)
            self._sums = np.vstack([self._sums, x.sum(0, keepdims=True)])
            self.counts_ = np.append(self.counts_, x.shape[0])
        return self

    @property
    def centers_(self) -> np.ndarray:
        """Unit-norm prototypes ``[K, F]``, in the order of ``labels_``."""
        if self._sums is None or not self.labels_:
            raise RuntimeError("no prototypes yet: call fit() or enrol() first")
        return _l2_normalise(self._sums / self.counts_[:, None])

    def similarity(self, codes: ArrayLike) -> np.ndarray:
        """Cosine similarity of codes ``[N, F]`` to every prototype: ``[N, K]`` in [-1, 1]."""
        return _l2_normalise(np.atleast_2d(_numpy(codes))) @ self.centers_.T

    def predict(self, codes: ArrayLike) -> list[Hashable]:
        """The label of the nearest prototype for each code."""
        return [self.labels_[k] for k in self.similarity(codes).argmax(1)]

    def held_out_similarity(self, label: Hashable, codes: ArrayLike) -> np.ndarray:
        """Cosine similarity ``[n, K]`` of codes that were enrolled into class ``label`` to every prototype, each
        code's own class prototype rebuilt without it (leave-one-out): how an unseen sample of the class would
        score. Needs at least two samples in the class."""
        k = self.labels_.index(label)
        if self.counts_[k] < 2:
            raise ValueError(f"class {label!r} holds {self.counts_[k]} sample: leave-one-out needs two")
        x = _l2_normalise(np.atleast_2d(_numpy(codes)))
        sims = x @ self.centers_.T
        assert self._sums is not None  # centers_ raised above when there are no prototypes
        own = _l2_normalise((self._sums[k][None, :] - x) / (self.counts_[k] - 1))  # [n, F], one centre per code
        sims[:, k] = (x * own).sum(1)
        return sims

    def save(self, directory: str | Path) -> None:
        """``prototypes.safetensors`` (sums, counts) + ``prototypes.json`` (labels)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._sums is None:
            raise RuntimeError("nothing to save: no prototypes yet")
        save_file(
            {"sums": np.ascontiguousarray(self._sums), "counts": self.counts_},
            str(directory / "prototypes.safetensors"),
        )
        (directory / "prototypes.json").write_text(json.dumps({"labels": self.labels_}, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> Prototypes:
        directory = Path(directory)
        tensors = load_file(str(directory / "prototypes.safetensors"))
        proto = cls()
        proto.labels_ = json.loads((directory / "prototypes.json").read_text())["labels"]
        proto._sums, proto.counts_ = tensors["sums"], tensors["counts"]
        return proto


# ----- calibration -----
class TemperatureScaler:
    """Temperature scaling (Guo et al. 2017): one ``T > 0`` so that ``softmax(logits / T)`` minimises the NLL of
    held-out labels. Optimised over ``log T`` (so ``T`` stays positive) with L-BFGS."""

    def __init__(self) -> None:
        self.temperature_: float = 1.0

    def fit(self, logits: ArrayLike, labels: ArrayLike, max_iter: int = 200) -> TemperatureScaler:
        z = torch.as_tensor(_numpy(logits), dtype=torch.float64)
        y = torch.as_tensor(_numpy(labels, dtype=np.int64))
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            nll = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
            nll.backward()
            return nll

        opt.step(closure)
        self.temperature_ = float(log_t.detach().exp())
        return self

    def transform(self, logits: ArrayLike) -> np.ndarray:
        """Calibrated probabilities ``[N, K]``."""
        return _softmax(_numpy(logits) / self.temperature_)

    def nll(self, logits: ArrayLike, labels: ArrayLike) -> float:
        """Mean negative log-likelihood of ``labels`` under the calibrated probabilities."""
        p = self.transform(logits)
        y = _numpy(labels, dtype=np.int64)
        return float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)).mean())


def choose_unknown_threshold(scores_known_val: ArrayLike, target_tpr: float = 0.95) -> float:
    """The largest threshold that still accepts at least ``target_tpr`` of the known validation samples
    (accepted: ``score >= threshold``)."""
    s = _numpy(scores_known_val).ravel()
    if s.size == 0 or not 0.0 < target_tpr <= 1.0:
        raise ValueError(f"need known scores and 0 < target_tpr <= 1; got {s.size} scores, {target_tpr=}")
    return float(np.quantile(s, 1.0 - target_tpr, method="lower"))


# ----- the open-set decision -----
@dataclass(frozen=True)
class Attribution:
    """One decision. ``label`` is a class name, ``"<family> (exact model unknown)"`` or ``"unknown"``;
    ``confidence`` the calibrated probability of that answer (of the best class when unknown); ``score`` the
    known-ness score compared with the threshold."""

    label: str
    confidence: float
    known: bool
    family: str | None
    score: float


class OpenSetAttributor:
    """Closed-set scores -> calibrated probabilities -> known source, family, or "unknown".

    ``source="logits"``: class scores are the decoupler's logits (training classes only); the known-ness score is
    the calibrated max probability. ``source="prototypes"``: class scores are cosine similarities to
    :class:`Prototypes` (so enrolled classes count), calibrated by a temperature; the known-ness score is the
    max similarity, i.e. the distance to the nearest prototype. ``class_thresholds`` overrides ``threshold`` for
    the classes it names (an enrolled source's own, fitted on its enrolment samples).
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        *,
        source: Literal["logits", "prototypes"] = "logits",
        prototypes: Prototypes | None = None,
        families: Mapping[str, str] | None = None,
        threshold: float | None = None,
        family_threshold: float = 0.9,
        class_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        if source == "prototypes" and prototypes is None:
            raise ValueError("source='prototypes' needs prototypes")
        if source == "logits" and class_names is None:
            raise ValueError("source='logits' needs class_names (one per logit)")
        self.source = source
        self.class_names = list(class_names) if class_names is not None else None
        self.prototypes = prototypes
        self.families = dict(families or {})
        self.threshold_ = threshold
        self.family_threshold = family_threshold
        self.class_thresholds = dict(class_thresholds or {})
        self.scaler_ = TemperatureScaler()

    def _names(self) -> list[str]:
        if self.source == "prototypes":
            assert self.prototypes is not None  # __init__ refuses source='prototypes' without prototypes
            return [str(label) for label in self.prototypes.labels_]
        assert self.class_names is not None  # __init__ refuses source='logits' without class_names
        return self.class_names

    def _class_scores(self, codes: ArrayLike | None, logits: ArrayLike | None) -> np.ndarray:
        if self.source == "prototypes":
            if codes is None:
                raise ValueError("source='prototypes' needs codes")
            assert self.prototypes is not None  # __init__ refuses source='prototypes' without prototypes
            return self.prototypes.similarity(codes)
        if logits is None:
            raise ValueError("source='logits' needs logits")
        return _numpy(logits)

    def class_scores(self, codes: ArrayLike | None = None, logits: ArrayLike | None = None) -> np.ndarray:
        """Uncalibrated class scores ``[N, K]`` over :meth:`_names`: cosine similarities to the prototypes, or the
        logits. :meth:`decide` takes them (or any mean of them, e.g. over an image's tiles)."""
        return self._class_scores(codes, logits)

    def probabilities(self, codes: ArrayLike | None = None, logits: ArrayLike | None = None) -> np.ndarray:
        """Calibrated class probabilities ``[N, K]`` over :meth:`_names`."""
        return self.scaler_.transform(self._class_scores(codes, logits))

    def scores(self, codes: ArrayLike | None = None, logits: ArrayLike | None = None) -> np.ndarray:
        """Known-ness scores ``[N]`` (higher: more likely a known source)."""
        class_scores = self._class_scores(codes, logits)
        return self._known(class_scores, self.scaler_.transform(class_scores))

    def _known(self, class_scores: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return class_scores.max(1) if self.source == "prototypes" else probs.max(1)

    def accepted(self, codes: ArrayLike | None = None, logits: ArrayLike | None = None) -> np.ndarray:
        """Whether each sample's best class takes it: its known-ness score passes that class's threshold
        (``class_thresholds``, else ``threshold_``)."""
        return self._accepted(self.probabilities(codes, logits), self.scores(codes, logits))

    def _accepted(self, probs: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.threshold_ is None:
            raise RuntimeError("no unknown threshold: pass threshold= or call fit()")
        names = self._names()
        limits = np.array([self.class_thresholds.get(names[b], self.threshold_) for b in probs.argmax(1)])
        return scores >= limits

    def _label_index(self, labels: ArrayLike) -> np.ndarray:
        """Class names or prototype labels -> column indices; integer labels of logits pass through."""
        values = _numpy(labels, dtype=None).ravel().tolist()
        if self.source == "prototypes":
            assert self.prototypes is not None  # __init__ refuses source='prototypes' without prototypes
            keys: Sequence[Hashable] = self.prototypes.labels_
        else:
            assert self.class_names is not None  # __init__ refuses source='logits' without class_names
            keys = self.class_names
        if self.source == "logits" and all(isinstance(v, int) for v in values):
            return np.asarray(values, dtype=np.int64)
        lookup = {k: i for i, k in enumerate(keys)}
        missing = sorted({str(v) for v in values if v not in lookup})
        if missing:
            raise ValueError(f"validation labels {missing} are not among the classes {list(keys)}")
        return np.asarray([lookup[v] for v in values], dtype=np.int64)

    def fit(
        self,
        labels_val: ArrayLike,
        codes_val: ArrayLike | None = None,
        logits_val: ArrayLike | None = None,
        target_tpr: float = 0.95,
    ) -> OpenSetAttributor:
        """Fit the temperature on known validation samples, then the threshold that accepts ``target_tpr`` of
        them. ``labels_val`` are prototype labels, class names, or (for logits) column indices."""
        self.scaler_.fit(self._class_scores(codes_val, logits_val), self._label_index(labels_val))
        self.threshold_ = choose_unknown_threshold(self.scores(codes_val, logits_val), target_tpr)
        return self

    def predict(self, codes: ArrayLike | None = None, logits: ArrayLike | None = None) -> list[Attribution]:
        """One decision per sample: the best class if its score passes its threshold (``class_thresholds``, else
        ``threshold_``); else the best family if its summed probability passes ``family_threshold`` and it is a
        model family (not :data:`REAL_FAMILY`); else ``"unknown"``."""
        return self.decide(self._class_scores(codes, logits))[1]

    def decide(self, class_scores: ArrayLike) -> tuple[np.ndarray, list[Attribution]]:
        """:meth:`predict` from class scores ``[N, K]`` (:meth:`class_scores`): the calibrated probabilities
        ``[N, K]`` and one decision per row."""
        names = self._names()
        class_scores = _numpy(class_scores)
        probs = self.scaler_.transform(class_scores)
        scores = self._known(class_scores, probs)
        accepted = self._accepted(probs, scores)  # from the same arrays: no second pass over the classes
        family_names = sorted(set(self.families.values()))
        # Family score = sum of the calibrated probabilities of its members (Bayes over the label->family map).
        fam_probs = (
            np.stack(
                [probs[:, [i for i, n in enumerate(names) if self.families.get(n) == f]].sum(1) for f in family_names],
                1,
            )
            if family_names
            else np.zeros((len(probs), 0))
        )
        out = []
        for i in range(len(probs)):
            best = int(probs[i].argmax())
            if accepted[i]:
                out.append(
                    Attribution(
                        names[best], float(probs[i, best]), True, self.families.get(names[best]), float(scores[i])
                    )
                )
            elif (
                fam_probs.shape[1]
                and fam_probs[i].max() >= self.family_threshold
                and family_names[int(fam_probs[i].argmax())] != REAL_FAMILY
            ):
                f = int(fam_probs[i].argmax())
                out.append(
                    Attribution(
                        f"{family_names[f]} (exact model unknown)",
                        float(fam_probs[i, f]),
                        False,
                        family_names[f],
                        float(scores[i]),
                    )
                )
            else:
                out.append(Attribution(UNKNOWN, float(probs[i, best]), False, None, float(scores[i])))
        return probs, out


# ----- metrics -----
def auroc(known_scores: ArrayLike, unknown_scores: ArrayLike) -> float:
    """Area under the ROC curve for telling known (positive) from unknown samples by score."""
    k, u = _numpy(known_scores).ravel(), _numpy(unknown_scores).ravel()
    return float(roc_auc_score(np.r_[np.ones(len(k)), np.zeros(len(u))], np.r_[k, u]))


def oscr(known_scores: ArrayLike, known_correct: ArrayLike, unknown_scores: ArrayLike) -> float:
    """Open-set classification rate (Dhamija et al. 2018): area under CCR(t) against FPR(t), where
    ``CCR(t)`` is the fraction of known samples both correctly classified and accepted (``score >= t``) and
    ``FPR(t)`` the fraction of unknown samples accepted. 1 is perfect; the closed-set accuracy bounds it."""
    k = _numpy(known_scores).ravel()
    correct = _numpy(known_correct, dtype=bool).ravel()
    u = _numpy(unknown_scores).ravel()
    if len(k) != len(correct) or not len(k) or not len(u):
        raise ValueError(
            f"need matching known scores/correct flags and some unknowns; got {len(k)}, {len(correct)}, {len(u)}"
        )
    # 1. Sweep t down over every distinct score; at each t, count the accepted correct knowns and unknowns.
    thresholds = np.unique(np.r_[k, u])[::-1]
    ccr = np.array([(correct & (k >= t)).sum() for t in thresholds]) / len(k)
    fpr = np.array([(u >= t).sum() for t in thresholds]) / len(u)
    # 2. The curve starts at (0, 0) (t above every score); trapezoids make tied scores a diagonal step.
    ccr, fpr = np.r_[0.0, ccr], np.r_[0.0, fpr]
    return float(np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2.0))


def expected_calibration_error(probs: ArrayLike, labels: ArrayLike, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): ``sum_b |B_b|/N * |acc(B_b) - conf(B_b)|`` over ``bins`` equal-width confidence
    bins ``(i/bins, (i+1)/bins]``, with confidence the max probability of each row of ``probs`` ``[N, K]``."""
    p = _numpy(probs)
    y = _numpy(labels, dtype=np.int64).ravel()
    if p.ndim != 2 or len(y) != len(p):
        raise ValueError(f"expected probs [N, K] and labels [N]; got {p.shape} and {y.shape}")
    conf, correct = p.max(1), (p.argmax(1) == y).astype(np.float64)
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], conf, side="left")
    ece = 0.0
    for b in np.unique(which):
        m = which == b
        ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)
