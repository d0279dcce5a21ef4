"""The real-manifold index: exact search, ManiFPT projection difference, and a lossless folder round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from causalprint.features import manifold
from causalprint.features.manifold import RealManifoldIndex

PROVENANCE = {"space": {"name": "dct"}, "reference_model": {"name": "ddpm-tiny"}, "source_uri_count": 3}


def _index(m: int = 300, d: int = 24, seed: int = 0) -> RealManifoldIndex:
    real = torch.randn(m, d, generator=torch.Generator().manual_seed(seed))
    return RealManifoldIndex().fit(real, [f"real-{i}" for i in range(m)], PROVENANCE)


@pytest.mark.parametrize("chunk_elements", [1 << 22, 64])  # one block, and many small blocks
def test_nearest_is_exact(chunk_elements: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifold, "_CHUNK_ELEMENTS", chunk_elements)
    index = _index()
    queries = torch.randn(50, 24, generator=torch.Generator().manual_seed(1))
    brute = np.linalg.norm(queries.double().numpy()[:, None] - index.embeddings_.double().numpy()[None], axis=2)
    found = index.nearest(queries)
    np.testing.assert_array_equal(found.index.numpy(), brute.argmin(axis=1))
    np.testing.assert_allclose(found.distance.numpy(), brute.min(axis=1), rtol=1e-6)
    assert found.ids == [f"real-{i}" for i in brute.argmin(axis=1)]


def test_projection_difference_of_real_point_is_zero_and_of_offset_is_the_offset() -> None:
    index = _index()
    real = index.embeddings_[:10]
    assert torch.equal(index.projection_difference(real), torch.zeros_like(real))
    offset = 1e-3 * torch.randn(10, 24)
    torch.testing.assert_close(index.projection_difference(real + offset), offset, rtol=1e-4, atol=1e-6)


def test_projection_difference_is_differentiable() -> None:
    index = _index()
    q = torch.randn(4, 24, requires_grad=True)
    index.projection_difference(q).sum().backward()
    assert torch.equal(q.grad, torch.ones_like(q))


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = _index()
    loaded = RealManifoldIndex.load(index.save(tmp_path / "manifold"))
    assert torch.equal(loaded.embeddings_, index.embeddings_)
    assert loaded.ids_ == index.ids_ and loaded.provenance_ == index.provenance_
    assert loaded.provenance_.space == {"name": "dct"} and loaded.provenance_.created_at
    queries = torch.randn(7, 24)
    assert torch.equal(loaded.nearest(queries).index, index.nearest(queries).index)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="ids"):
        RealManifoldIndex().fit(torch.zeros(3, 2), ["a"], PROVENANCE)
    with pytest.raises(ValueError, match=r"\[N, 24\]"):
        _index().nearest(torch.zeros(2, 5))
    with pytest.raises(RuntimeError, match="fit"):
        RealManifoldIndex().nearest(torch.zeros(2, 5))
