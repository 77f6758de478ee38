"""EASE's inverse: LAPACK on the CPU and torch on another device agree; ``auto`` (EASE and ALS) never needs a GPU."""

from __future__ import annotations

import numpy as np
import pytest

from models.recommenders import EASE
from models.recommenders.ease import _device, _mirror_upper, _spd_inverse, _torch_spd_inverse


def _gram(seed: int = 0, items: int = 120, l2: float = 30.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = (rng.random((400, items)) < 0.05).astype(np.float32)
    gram = matrix.T @ matrix
    gram[np.diag_indices_from(gram)] += l2
    return gram


def test_torch_inverse_is_the_lapack_inverse():
    gram = _gram()
    lapack = _spd_inverse(gram.copy(), "cpu")
    torch_ = _torch_spd_inverse(gram.copy(), "cpu")  # the GPU path's code, run where CI runs
    np.testing.assert_allclose(torch_, lapack, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(lapack @ gram, np.eye(len(gram)), atol=1e-4)


@pytest.mark.parametrize("items", [1, 130, 300])
def test_the_inverse_is_bit_for_bit_the_whole_matrix_computation(items):
    import scipy.sparse as sp
    from scipy.linalg import lapack

    matrix = sp.random(500, items, density=0.05, format="csr", dtype=np.float32, random_state=items)
    gram = (matrix.T @ matrix).toarray()  # as EASE builds it: exactly symmetric
    gram[np.diag_indices_from(gram)] += 20.0
    factor, _ = lapack.spotrf(gram.copy(), lower=False, clean=True, overwrite_a=True)
    before, _ = lapack.spotri(factor, lower=False, overwrite_c=True)
    diagonal = before.diagonal().copy()
    before += before.T  # the upper triangle mirrored across the whole matrix at once
    before[np.diag_indices_from(before)] = diagonal
    np.testing.assert_array_equal(_spd_inverse(gram.copy(), "cpu"), before)
    upper = np.triu(before)
    np.testing.assert_array_equal(_mirror_upper(np.asfortranarray(upper), block=64), before)  # blocks and edges


def test_an_indefinite_matrix_is_refused_on_both_paths():
    bad = -np.eye(5, dtype=np.float32)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        _spd_inverse(bad.copy(), "cpu")
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        _torch_spd_inverse(bad.copy(), "cpu")


def test_auto_device_runs_without_a_gpu(synthetic, cutoff):
    torch = pytest.importorskip("torch")
    assert _device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert _device("cpu") == "cpu"
    fitted = EASE(l2=50.0, max_items=300).fit(synthetic, cutoff=cutoff)
    assert fitted.weights_.shape == (len(fitted.items_), len(fitted.items_))


def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error(synthetic, cutoff):
    import implicit.gpu
    import torch

    from features.exceptions import ConfigError
    from models.recommenders import ALS

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="ease.*device 'cuda'"):
            EASE(l2=50.0, max_items=300, device="cuda").fit(synthetic, cutoff=cutoff)
    if not implicit.gpu.HAS_CUDA:
        with pytest.raises(ConfigError, match="als.*device 'cuda'"):
            ALS(factors=8, iterations=2, device="cuda").fit(synthetic, cutoff=cutoff)


def test_weights_are_row_major_after_fit_and_load(synthetic, cutoff, tmp_path):
    # Scoring multiplies sparse rows by the weights; a column-major matrix is copied on every product.
    fitted = EASE(l2=50.0, max_items=300).fit(synthetic, cutoff=cutoff)
    assert fitted.weights_.flags["C_CONTIGUOUS"]
    loaded = EASE.load(fitted.save(tmp_path / "ease"))
    assert loaded.weights_.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(loaded.weights_, fitted.weights_)
