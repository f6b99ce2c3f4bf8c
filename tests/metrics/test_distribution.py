"""Fréchet and kernel distances against float64 numpy/scipy references, their sanity properties and the Metric
modules (same numbers as the functions, states merged as across two ranks)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor, nn

from zoo.metrics import FrechetDistance, KernelDistance, frechet_distance, kernel_inception_distance


def reference_frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 sqrtm(S_a S_b)) with scipy's general matrix square root."""
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    root = np.real(root)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def reference_unbiased_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                            coef0: float = 1.0) -> float:
    """Unbiased MMD^2 with explicit loops over the pairs i != j (polynomial kernel)."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma

    def kernel(u: np.ndarray, v: np.ndarray) -> float:
        return (gamma * float(np.dot(u, v)) + coef0) ** degree

    m = len(x)
    k_xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    k_yy = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    k_xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m))
    return k_xx / (m * (m - 1)) + k_yy / (m * (m - 1)) - 2 * k_xy / (m * m)


def correlated_features(n: int, dim: int, seed: int, shift: float = 0.0) -> Tensor:
    """``(n, dim)`` float64 Gaussian features with a random (seeded) full-rank covariance, shifted by ``shift``."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=torch.Generator().manual_seed(1234), dtype=torch.float64)
    return torch.randn(n, dim, generator=generator, dtype=torch.float64) @ mixing + shift


# ------------------------------------------------------------------------------------------------- Fréchet distance


@pytest.mark.parametrize("dim", [1, 8, 32])
def test_frechet_distance_matches_scipy_sqrtm_reference(dim):
    a = correlated_features(300, dim, seed=0)
    b = correlated_features(250, dim, seed=1, shift=0.3) * 1.2
    expected = reference_frechet_distance(a.numpy(), b.numpy())
    got = frechet_distance(a, b)
    assert got == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_accepts_float32_and_computes_in_float64():
    a = correlated_features(200, 16, seed=2)
    b = correlated_features(200, 16, seed=3, shift=0.5)
    expected = reference_frechet_distance(a.float().double().numpy(), b.float().double().numpy())
    assert frechet_distance(a.float(), b.float()) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_is_zero_for_identical_sets():
    a = correlated_features(100, 24, seed=4)
    scale = float(torch.cov(a.T).trace())
    assert frechet_distance(a, a.clone()) <= 1e-9 * scale


def test_frechet_distance_handles_singular_covariances():
    a = correlated_features(10, 64, seed=5)  # N < D: rank-deficient covariances
    b = correlated_features(12, 64, seed=6, shift=1.0)
    distance = frechet_distance(a, b)
    assert np.isfinite(distance) and distance > 0
    assert frechet_distance(a, a) <= 1e-8 * float(torch.cov(a.T).trace())


@pytest.mark.parametrize(("n_a", "n_b", "dim"), [(10, 12, 64), (5, 40, 40), (64, 64, 64), (3, 2, 256)])
def test_frechet_distance_of_few_samples_equals_the_covariance_formula(n_a, n_b, dim):
    """Sets of at most D samples take the N x N route; it agrees with the D x D eigendecomposition to that route's
    accuracy (its covariances are singular, and the square roots of their round-off eigenvalues add up to ~1e-8)."""
    a = correlated_features(n_a, dim, seed=n_a)
    b = correlated_features(n_b, dim, seed=n_b + 100, shift=0.3)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov_a)
    sqrt_a = (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    trace_sqrt = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    expected = float((a.mean(0) - b.mean(0)).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("n", "dim"), [(8, 64), (64, 64), (300, 16)])
def test_frechet_distance_of_a_scaled_shifted_copy_is_exact(n, dim):
    """``b = c a + s``: ``S_b = c^2 S_a``, so the distance is ``|mu_a - mu_b|^2 + (1 - c)^2 Tr(S_a)`` whatever the
    rank of ``S_a``."""
    a = correlated_features(n, dim, seed=8)
    shift = torch.linspace(-1, 1, dim, dtype=torch.float64)
    expected = float((0.5 * a.mean(0) - shift).square().sum() + 0.25 * torch.cov(a.T).trace())
    assert frechet_distance(a, 0.5 * a + shift) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_a_pure_mean_shift_is_the_squared_shift():
    a = correlated_features(100, 8, seed=7)
    assert frechet_distance(a, a + 2.0) == pytest.approx(8 * 2.0**2, rel=1e-9)


@pytest.mark.parametrize(("features_a", "features_b", "message"), [
    (torch.zeros(10), torch.zeros(10, 4), r"features_a must have shape \(N, D\); got \(10,\)"),
    (torch.zeros(10, 4), torch.zeros(10, 5), "feature dimensions differ: features_a has D=4, features_b has D=5"),
    (torch.zeros(1, 4), torch.zeros(10, 4), "features_a needs at least 2 samples; got 1"),
    (torch.zeros(10, 4), torch.full((10, 4), float("nan")), "features_b contains NaN or infinite values"),
])
def test_frechet_distance_errors_say_what_is_wrong(features_a, features_b, message):
    with pytest.raises(ValueError, match=message) as raised:
        frechet_distance(features_a, features_b)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith("frechet_distance: ")


# -------------------------------------------------------------------------------------------------- kernel distance


def test_kernel_distance_on_whole_sets_matches_a_direct_numpy_mmd():
    a = correlated_features(30, 6, seed=8)
    b = correlated_features(30, 6, seed=9, shift=0.2)
    expected = reference_unbiased_mmd2(a.numpy(), b.numpy())
    mean, std = kernel_inception_distance(a, b, subsets=1, subset_size=1000)
    assert mean == pytest.approx(expected, rel=1e-6)
    assert std == 0.0


def test_kernel_distance_subsets_match_the_reference_on_the_same_draws():
    a = correlated_features(40, 5, seed=10)
    b = correlated_features(35, 5, seed=11, shift=0.3)
    subsets, subset_size, gamma, coef0, degree = 4, 12, 0.5, 2.0, 2
    draws = torch.Generator().manual_seed(7)
    expected = []
    for _ in range(subsets):  # the documented draw order: randperm(N_a), then randperm(N_b)
        rows_a = torch.randperm(len(a), generator=draws)[:subset_size].numpy()
        rows_b = torch.randperm(len(b), generator=draws)[:subset_size].numpy()
        expected.append(reference_unbiased_mmd2(a.numpy()[rows_a], b.numpy()[rows_b], degree, gamma, coef0))
    mean, std = kernel_inception_distance(a, b, subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma,
                                          coef0=coef0, generator=torch.Generator().manual_seed(7))
    assert mean == pytest.approx(np.mean(expected), rel=1e-6)
    assert std == pytest.approx(np.std(expected), rel=1e-6)


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
    a = correlated_features(400, 16, seed=12)
    same = correlated_features(400, 16, seed=13)
    shifted = correlated_features(400, 16, seed=14, shift=2.0)
    generator = torch.Generator().manual_seed(0)
    mean_same, std_same = kernel_inception_distance(a, same, subsets=20, subset_size=200, generator=generator)
    mean_shifted, std_shifted = kernel_inception_distance(a, shifted, subsets=20, subset_size=200, generator=generator)
    assert abs(mean_same) < 3 * std_same
    assert mean_shifted > 5 * std_shifted
    assert mean_shifted > 20 * abs(mean_same)


def test_kernel_distance_caps_the_subset_size_and_repeats_with_a_seeded_generator():
    a = correlated_features(20, 4, seed=15)
    b = correlated_features(25, 4, seed=16)
    whole, _ = kernel_inception_distance(a, b[:20], subsets=1)
    capped, _ = kernel_inception_distance(a, b[:20], subsets=3, subset_size=10_000)
    assert capped == pytest.approx(whole, rel=1e-12)  # every subset is the whole set, reordered
    first = kernel_inception_distance(a, b, subsets=5, subset_size=8, generator=torch.Generator().manual_seed(3))
    second = kernel_inception_distance(a, b, subsets=5, subset_size=8, generator=torch.Generator().manual_seed(3))
    assert first == second


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"subsets": 0}, "subsets must be >= 1; got 0"),
    ({"subset_size": 1}, "subset_size must be >= 2; got 1"),
    ({"degree": 0}, "degree must be >= 1; got 0"),
])
def test_kernel_distance_errors_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(torch.zeros(4, 2), torch.zeros(4, 2), **kwargs)
    with pytest.raises(ValueError, match="kernel_inception_distance: features_b must have shape"):
        kernel_inception_distance(torch.zeros(4, 2), torch.zeros(4, 2, 1))


# ----------------------------------------------------------------------------------------------------- Metric modules


class MeanPoolFeatures(nn.Module):
    """Toy extractor: per-channel means and maxima. Shapes: ``(B, C, H, W) -> (B, 2C)``."""

    def forward(self, images: Tensor) -> Tensor:
        return torch.cat([images.mean(dim=(2, 3)), images.amax(dim=(2, 3))], dim=1)


def test_frechet_metric_equals_the_function_and_merges_two_ranks():
    real = correlated_features(60, 8, seed=17)
    fake = correlated_features(50, 8, seed=18, shift=0.4)
    expected = frechet_distance(real, fake)
    rank0, rank1 = FrechetDistance(), FrechetDistance()
    rank0.update(real[:30], real=True)
    rank0.update(fake[:20], real=False)
    rank1.update(real[30:], real=True)
    rank1.update(fake[20:], real=False)
    rank0.merge_state(rank1)
    assert float(rank0.compute()) == pytest.approx(expected, rel=1e-12)
    whole = FrechetDistance()
    whole.update(real, real=True)
    whole.update(fake, real=False)
    assert float(whole.compute()) == pytest.approx(expected, rel=1e-12)


def test_kernel_metric_equals_the_function_when_updated_in_halves():
    real = correlated_features(40, 6, seed=19)
    fake = correlated_features(44, 6, seed=20, shift=0.4)
    expected = kernel_inception_distance(real, fake, subsets=5, subset_size=16,
                                         generator=torch.Generator().manual_seed(11))
    metric = KernelDistance(subsets=5, subset_size=16, seed=11)
    metric.update(real[:20], real=True)
    metric.update(fake, real=False)
    metric.update(real[20:], real=True)
    mean, std = metric.compute()
    assert (float(mean), float(std)) == pytest.approx(expected, rel=1e-12)
    assert metric.compute()[0] == mean  # seeded: compute() repeats


def test_kernel_metric_merges_two_ranks():
    real = correlated_features(40, 6, seed=21)
    fake = correlated_features(40, 6, seed=22, shift=0.4)
    # subsets as large as the sets: every draw uses all rows, so the order the ranks' rows are merged in is irrelevant
    expected, _ = kernel_inception_distance(real, fake, subsets=1)
    rank0, rank1 = KernelDistance(subsets=2), KernelDistance(subsets=2)
    rank0.update(real[:25], real=True)
    rank1.update(real[25:], real=True)
    rank0.update(fake[:10], real=False)
    rank1.update(fake[10:], real=False)
    rank0.merge_state(rank1)
    mean, std = rank0.compute()
    assert float(mean) == pytest.approx(expected, rel=1e-9)
    assert float(std) == pytest.approx(0.0, abs=1e-9 * abs(expected))


def test_metrics_run_a_feature_extractor_on_images():
    generator = torch.Generator().manual_seed(21)
    real_images = torch.rand(12, 3, 8, 8, generator=generator)
    fake_images = torch.rand(10, 3, 8, 8, generator=generator) * 0.8
    extractor = MeanPoolFeatures()
    fid, kid = FrechetDistance(extractor), KernelDistance(extractor, subsets=3, subset_size=8, seed=0)
    for metric in (fid, kid):
        metric.update(real_images[:6], real=True)
        metric.update(real_images[6:], real=True)
        metric.update(fake_images, real=False)
    real_features, fake_features = extractor(real_images), extractor(fake_images)
    assert float(fid.compute()) == pytest.approx(frechet_distance(real_features, fake_features), rel=1e-9)
    expected = kernel_inception_distance(real_features, fake_features, subsets=3, subset_size=8,
                                         generator=torch.Generator().manual_seed(0))
    assert tuple(float(v) for v in kid.compute()) == pytest.approx(expected, rel=1e-9)


def test_metric_errors_name_the_problem():
    metric = FrechetDistance()
    with pytest.raises(ValueError, match=r"expects features of shape \(B, D\)"):
        metric.update(torch.zeros(2, 3, 4, 4), real=True)
    metric.update(torch.zeros(4, 3), real=True)
    with pytest.raises(ValueError, match="needs both real and generated features; got 1 real and 0 generated"):
        metric.compute()
