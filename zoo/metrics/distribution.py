"""Distribution metrics on image features: Fréchet distance (FID) and kernel distance (KID).

- :func:`frechet_distance`: the Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., 2017),
  ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``; on Inception ``pool3`` features it is the FID.
- :func:`kernel_inception_distance`: the unbiased squared MMD with the cubic polynomial kernel, averaged over random
  subsets (Bińkowski et al., 2018, "Demystifying MMD GANs"); on Inception features it is the KID.
- :class:`FrechetDistance`, :class:`KernelDistance`: torchmetrics modules accumulating real and generated features
  (optionally through a feature extractor such as :class:`zoo.nets.fid_inception.FIDInceptionV3`) with states that
  concatenate across processes, so that ``compute()`` sees every rank's features.

Everything is computed in float64. Feature sets are ``(N, D)`` tensors (N samples of D features).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

__all__ = [
    "FrechetDistance",
    "KernelDistance",
    "frechet_distance",
    "kernel_inception_distance",
]


def _check_feature_sets(name: str, features_a: Tensor, features_b: Tensor, min_samples: int) -> tuple[Tensor, Tensor]:
    """Both sets as float64 ``(N, D)`` tensors with the same ``D``, at least ``min_samples`` rows and finite values;
    raises ``ValueError`` with a one-line message otherwise."""
    checked = []
    for label, features in (("features_a", features_a), ("features_b", features_b)):
        if not isinstance(features, Tensor):
            raise TypeError(f"{name}: {label} must be a torch.Tensor of shape (N, D); got {type(features).__name__}")
        if features.ndim != 2:
            raise ValueError(f"{name}: {label} must have shape (N, D); got {tuple(features.shape)}")
        if features.shape[0] < min_samples:
            raise ValueError(f"{name}: {label} needs at least {min_samples} samples; got {features.shape[0]}")
        features = features.detach().to(torch.float64)
        if not torch.isfinite(features).all():
            raise ValueError(f"{name}: {label} contains NaN or infinite values")
        checked.append(features)
    if checked[0].shape[1] != checked[1].shape[1]:
        raise ValueError(f"{name}: feature dimensions differ: features_a has D={checked[0].shape[1]}, "
                         f"features_b has D={checked[1].shape[1]}")
    return checked[0], checked[1]


def _symmetric_sqrt(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix through its eigendecomposition; eigenvalues below zero
    (round-off) are clipped to zero. Shapes: ``(D, D) -> (D, D)``."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID on Inception ``pool3`` features).

    ``||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))`` with sample means ``mu`` and unbiased sample
    covariances ``S`` (denominator ``N - 1``, as ``numpy.cov``), in float64. The trace of the matrix square root is
    computed as the sum of the square roots of the eigenvalues of the symmetric positive semi-definite matrix
    ``S_a^(1/2) S_b S_a^(1/2)``, which has the same eigenvalues as ``S_a S_b``; round-off negatives are clipped to zero,
    so singular covariances (``N <= D``) need no ``eps`` regularisation.

    Args:
        features_a: ``(N_a, D)`` features, ``N_a >= 2``.
        features_b: ``(N_b, D)`` features, ``N_b >= 2``.

    Returns:
        The distance (>= 0; exactly 0 only up to round-off for identical sets).

    Raises:
        ValueError: a set is not 2-D, has fewer than 2 samples, has non-finite values, or the ``D`` differ.
    """
    a, b = _check_feature_sets("frechet_distance", features_a, features_b, min_samples=2)
    mean_a, mean_b = a.mean(dim=0), b.mean(dim=0)
    if max(a.shape[0], b.shape[0]) <= a.shape[1]:
        trace_a, trace_b, trace_sqrt_product = _traces_from_samples(a - mean_a, b - mean_b)
    else:
        cov_a, cov_b = torch.cov(a.T, correction=1), torch.cov(b.T, correction=1)
        cov_a, cov_b = cov_a.reshape(a.shape[1], a.shape[1]), cov_b.reshape(b.shape[1], b.shape[1])  # D = 1: 0-d
        sqrt_a = _symmetric_sqrt(cov_a)
        product = sqrt_a @ cov_b @ sqrt_a
        product = (product + product.T) / 2
        trace_sqrt_product = torch.linalg.eigvalsh(product).clamp(min=0).sqrt().sum()
        trace_a, trace_b = cov_a.trace(), cov_b.trace()
    distance = (mean_a - mean_b).square().sum() + trace_a + trace_b - 2 * trace_sqrt_product
    return max(float(distance), 0.0)


def _traces_from_samples(centred_a: Tensor, centred_b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``Tr(S_a)``, ``Tr(S_b)`` and ``Tr((S_a S_b)^(1/2))`` from centred samples ``(N_a, D)``, ``(N_b, D)`` without
    forming a ``(D, D)`` matrix, for sets of at most ``D`` samples.

    With ``S = X^T X / (N - 1)``, the non-zero eigenvalues of ``S_a S_b`` are those of ``M^T M / ((N_a - 1)(N_b - 1))``
    with ``M = X_a X_b^T`` (``N_a x N_b``), so the trace of the square root is the sum of ``M``'s singular values over
    ``sqrt((N_a - 1)(N_b - 1))``: an SVD of an ``N_a x N_b`` matrix instead of eigendecompositions of ``D x D`` ones."""
    dof_a, dof_b = centred_a.shape[0] - 1, centred_b.shape[0] - 1
    singular_values = torch.linalg.svdvals(centred_a @ centred_b.T)
    return (centred_a.square().sum() / dof_a, centred_b.square().sum() / dof_b,
            singular_values.sum() / (dof_a * dof_b) ** 0.5)


def _polynomial_kernel(x: Tensor, y: Tensor, degree: int, gamma: float, coef0: float) -> Tensor:
    """``(gamma x.y + coef0) ** degree`` for every pair of rows. Shapes: ``(N, D), (M, D) -> (N, M)``."""
    return (gamma * (x @ y.T) + coef0) ** degree


def _unbiased_mmd2(x: Tensor, y: Tensor, degree: int, gamma: float, coef0: float) -> Tensor:
    """Unbiased squared MMD of two equally sized samples. Shapes: ``(m, D), (m, D) -> ()``.

    ``sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
    - 2 sum_{i, j} k(x_i, y_j) / m^2``.
    """
    m = x.shape[0]
    k_xx = _polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = _polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = _polynomial_kernel(x, y, degree, gamma, coef0)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    features_a: Tensor,
    features_b: Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Kernel distance (KID on Inception features): unbiased squared MMD averaged over random subsets.

    The kernel is ``k(x, y) = (gamma x.y + coef0) ** degree`` (by default ``(x.y / D + 1) ** 3``). For each of
    ``subsets`` rounds, ``m = min(subset_size, N_a, N_b)`` rows are drawn without replacement from each set
    (``torch.randperm(N_a)`` then ``torch.randperm(N_b)``, both from ``generator``) and the unbiased MMD^2 of the two
    subsets is computed in float64. The unbiased estimate can be slightly negative when both sets come from the same
    distribution.

    Args:
        features_a: ``(N_a, D)`` features, ``N_a >= 2``.
        features_b: ``(N_b, D)`` features, ``N_b >= 2``.
        subsets: number of random subsets averaged.
        subset_size: rows per subset, capped at ``min(N_a, N_b)``.
        degree: polynomial degree.
        gamma: scale of the dot product; ``None`` means ``1 / D``.
        coef0: constant added before the power.
        generator: random generator of the subsets (the global one when ``None``); must live on the CPU.

    Returns:
        ``(mean, std)`` of the per-subset MMD^2 values (population standard deviation; 0 for one subset).

    Raises:
        ValueError: bad shapes, non-finite values, or ``subsets``/``subset_size``/``degree`` below 1 (2 for
            ``subset_size``).
    """
    a, b = _check_feature_sets("kernel_inception_distance", features_a, features_b, min_samples=2)
    if subsets < 1:
        raise ValueError(f"kernel_inception_distance: subsets must be >= 1; got {subsets}")
    if subset_size < 2:
        raise ValueError(f"kernel_inception_distance: subset_size must be >= 2; got {subset_size}")
    if degree < 1:
        raise ValueError(f"kernel_inception_distance: degree must be >= 1; got {degree}")
    gamma = 1.0 / a.shape[1] if gamma is None else float(gamma)
    m = min(subset_size, a.shape[0], b.shape[0])
    values = torch.empty(subsets, dtype=torch.float64)
    for index in range(subsets):
        rows_a = torch.randperm(a.shape[0], generator=generator)[:m].to(a.device)
        rows_b = torch.randperm(b.shape[0], generator=generator)[:m].to(b.device)
        values[index] = _unbiased_mmd2(a[rows_a], b[rows_b], degree, gamma, float(coef0)).cpu()
    return float(values.mean()), float(values.std(correction=0))


class _FeatureDistance(Metric):
    """Accumulates real and generated features (list states concatenated across processes)."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, feature_extractor: nn.Module | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature_extractor = feature_extractor
        if feature_extractor is not None:
            feature_extractor.eval()
            feature_extractor.requires_grad_(False)
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    def update(self, inputs: Tensor, real: bool) -> None:
        """Add a batch: images ``(B, C, H, W)`` when a feature extractor is set (its output is flattened to
        ``(B, D)``), else features ``(B, D)``; ``real`` says which set they belong to."""
        if self.feature_extractor is not None:
            with torch.no_grad():
                features = self.feature_extractor(inputs)
            features = features.reshape(features.shape[0], -1)
        else:
            features = inputs
            if features.ndim != 2:
                raise ValueError(f"{type(self).__name__}.update expects features of shape (B, D) when no feature "
                                 f"extractor is set; got {tuple(features.shape)}")
        features = features.detach().to(torch.float64)
        (self.real_features if real else self.fake_features).append(features)

    def _feature_sets(self) -> tuple[Tensor, Tensor]:
        """All real and generated features seen. Shapes: ``(N_real, D), (N_fake, D)``."""
        name = type(self).__name__
        # a list of batches, or one tensor once the states were gathered across processes
        if not len(self.real_features) or not len(self.fake_features):
            raise ValueError(f"{name}.compute needs both real and generated features; got "
                             f"{len(self.real_features)} real and {len(self.fake_features)} generated batches")
        return dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features)


class FrechetDistance(_FeatureDistance):
    """Fréchet distance of accumulated real and generated features (FID with an Inception feature extractor).

    Args:
        feature_extractor: module mapping images ``(B, C, H, W)`` to features ``(B, D)`` (or anything flattened to
            it), e.g. ``FIDInceptionV3("pytorch-fid")`` for FID; ``None`` when :meth:`update` receives features.
        **kwargs: :class:`torchmetrics.Metric` options.

    ``update(inputs, real)`` adds a batch; ``compute()`` returns :func:`frechet_distance` of all real features against
    all generated ones as a float64 scalar tensor. States are lists concatenated across processes
    (``dist_reduce_fx="cat"``), so every rank computes the distance over the whole data set.
    """

    def compute(self) -> Tensor:
        real, fake = self._feature_sets()
        return torch.tensor(frechet_distance(real, fake), dtype=torch.float64)


class KernelDistance(_FeatureDistance):
    """Kernel distance of accumulated real and generated features (KID with an Inception feature extractor).

    Args:
        feature_extractor: as for :class:`FrechetDistance`.
        subsets, subset_size, degree, gamma, coef0: as for :func:`kernel_inception_distance`.
        seed: seed of the subset draws in ``compute()`` (a fresh CPU generator each call, so results repeat);
            ``None`` uses the global random generator.
        **kwargs: :class:`torchmetrics.Metric` options.

    ``compute()`` returns ``(mean, std)`` of :func:`kernel_inception_distance` as float64 scalar tensors, with
    ``features_a`` the real and ``features_b`` the generated features.
    """

    def __init__(self, feature_extractor: nn.Module | None = None, *, subsets: int = 100, subset_size: int = 1000,
                 degree: int = 3, gamma: float | None = None, coef0: float = 1, seed: int | None = 0,
                 **kwargs: Any) -> None:
        super().__init__(feature_extractor, **kwargs)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self.degree, self.gamma, self.coef0 = degree, gamma, coef0

    def compute(self) -> tuple[Tensor, Tensor]:
        real, fake = self._feature_sets()
        generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)
        mean, std = kernel_inception_distance(real, fake, subsets=self.subsets, subset_size=self.subset_size,
                                              degree=self.degree, gamma=self.gamma, coef0=self.coef0,
                                              generator=generator)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
