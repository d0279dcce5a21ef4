"""The real-data manifold of one feature space, and the ManiFPT fingerprint: the projection difference.

ManiFPT (Song et al., CVPR 2024) defines a generated sample's fingerprint as the offset between its embedding
and the embedding's projection onto the manifold of real data; here the projection is approximated by the
nearest real embedding under L2. The index is built from REAL embeddings only.

Search is exact brute force over chunks (memory ``O(query_chunk * index_chunk)``), fine up to ~1e5 real vectors
of a few thousand dimensions. At scale: approximate search (FAISS IVF-PQ or HNSW, on GPU where available)
trades a little recall for orders of magnitude in speed; the index is sharded by real-data partition with a
top-1 merge across shards; vectors may be PCA-reduced first; and the index is rebuilt, not appended, when the
space or the reference model changes (the provenance says which).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from safetensors.torch import load_file, save_file

from causalprint.config import StrictModel

_CANDIDATES = 8
_CHUNK_ELEMENTS = 1 << 22  # distances per block: 16 MiB of float32


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ManifoldProvenance(StrictModel):
    """Where an index came from: what its vectors must be matched against."""

    space: dict[str, str] = Field(description="FeatureSpace.identity() of the embeddings")
    reference_model: dict[str, str] = Field(description="identity of the diffusion model behind the residuals")
    source_uri_count: int = Field(ge=0, description="how many real images went in")
    created_at: str = Field(default_factory=_now)


@dataclass(frozen=True)
class NearestReal:
    """For each query: ``index`` ``[N]`` (long) into the real set, ``distance`` ``[N]`` (L2), and the ``ids``."""

    index: torch.Tensor
    distance: torch.Tensor
    ids: list[str]


class RealManifoldIndex:
    """Exact nearest-real-neighbour search in one feature space. Learned attributes: ``embeddings_`` ``[M, D]``,
    ``ids_``, ``provenance_``."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    def fit(
        self, embeddings: torch.Tensor, ids: Sequence[str], provenance: ManifoldProvenance | Mapping[str, Any]
    ) -> RealManifoldIndex:
        """Index ``embeddings`` ``[M, D]`` of real images named by ``ids``."""
        if embeddings.ndim != 2 or embeddings.shape[0] == 0:
            raise ValueError(f"expected real embeddings [M, D] with M > 0, got {list(embeddings.shape)}")
        if len(ids) != embeddings.shape[0]:
            raise ValueError(f"{len(ids)} ids for {embeddings.shape[0]} embeddings")
        if not torch.isfinite(embeddings).all():
            raise ValueError("real embeddings contain NaN or inf")
        self.embeddings_ = embeddings.detach().to(self.device, torch.float32).contiguous()
        self.ids_ = [str(i) for i in ids]
        self.provenance_ = ManifoldProvenance.model_validate(
            provenance.model_dump() if isinstance(provenance, ManifoldProvenance) else dict(provenance)
        )
        return self

    @property
    def dim(self) -> int:
        return int(self.embeddings_.shape[1])

    def __len__(self) -> int:
        return int(self.embeddings_.shape[0])

    def nearest(self, embeddings: torch.Tensor) -> NearestReal:
        """Nearest real embedding of each query ``[N, D]``.

        1. float32 ``cdist`` (matmul form, fast) over blocks keeps the ``k`` best candidates per query;
        2. the candidates are re-ranked by exact float64 distances, so the rounding of step 1 cannot pick a
           wrong neighbour unless more than ``k`` real points tie within float32 precision.
        """
        queries = self._check(embeddings)
        n, m = queries.shape[0], len(self)
        k = min(_CANDIDATES, m)
        # Bound both the distance block (q_chunk x m_chunk) and the re-ranking block (q_chunk x k x D).
        q_chunk = max(1, min(n, _CHUNK_ELEMENTS // max(min(m, 4096), k * self.dim)))
        m_chunk = max(k, _CHUNK_ELEMENTS // q_chunk)
        index = torch.empty(n, dtype=torch.long, device=self.device)
        distance = torch.empty(n, dtype=torch.float32, device=self.device)
        for qs in range(0, n, q_chunk):
            q = queries[qs : qs + q_chunk]
            best_d = torch.full((q.shape[0], 0), float("inf"), device=self.device)
            best_i = torch.empty((q.shape[0], 0), dtype=torch.long, device=self.device)
            for ms in range(0, m, m_chunk):
                d = torch.cdist(q, self.embeddings_[ms : ms + m_chunk])
                kk = min(k, d.shape[1])
                top_d, top_i = d.topk(kk, dim=1, largest=False)
                best_d, pos = torch.cat((best_d, top_d), 1).topk(min(k, best_d.shape[1] + kk), 1, largest=False)
                best_i = torch.cat((best_i, top_i + ms), 1).gather(1, pos)
            exact = (self.embeddings_[best_i].double() - q.double()[:, None, :]).square().sum(-1).sqrt()
            pick = exact.argmin(dim=1, keepdim=True)
            index[qs : qs + q_chunk] = best_i.gather(1, pick).squeeze(1)
            distance[qs : qs + q_chunk] = exact.gather(1, pick).squeeze(1).float()
        return NearestReal(index=index, distance=distance, ids=[self.ids_[i] for i in index.tolist()])

    def projection_difference(self, embeddings: torch.Tensor) -> torch.Tensor:
        """ManiFPT fingerprint ``emb - nearest_real(emb)``, ``[N, D]``, on the query's device; differentiable
        with respect to ``emb`` (the neighbour is held fixed)."""
        queries = self._check(embeddings)
        nearest = self.nearest(queries.detach())
        return (queries - self.embeddings_[nearest.index]).to(embeddings.device)

    def save(self, directory: str | Path) -> Path:
        """Write ``index.safetensors`` (the vectors) and ``index.json`` (ids, provenance)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"embeddings": self.embeddings_.cpu().contiguous()}, str(directory / "index.safetensors"))
        meta = {"ids": self.ids_, "provenance": self.provenance_.model_dump(), "count": len(self), "dim": self.dim}
        (directory / "index.json").write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> RealManifoldIndex:
        """The index written by :meth:`save`."""
        directory = Path(directory)
        meta = json.loads((directory / "index.json").read_text())
        embeddings = load_file(str(directory / "index.safetensors"))["embeddings"]
        return cls(device).fit(embeddings, meta["ids"], meta["provenance"])

    def _check(self, embeddings: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "embeddings_"):
            raise RuntimeError("the index is empty: call fit() or load() first")
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"expected queries [N, {self.dim}], got {list(embeddings.shape)}")
        return embeddings.to(self.device, torch.float32)
