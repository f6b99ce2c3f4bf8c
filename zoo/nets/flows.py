"""Normalizing flows of DECENT's patch density estimators, in the official state-dict layouts.

DECENT (Xie et al., NeurIPS 2022, https://github.com/Mid-Push/Decent) fits one density per generator feature layer
on sampled feature vectors (one per spatial position). Every flow maps ``(N, d)`` float tensors to ``(N,)`` natural
log-densities with ``log_probs(x)`` (also ``forward``). The flow types of the official ``--flow_type`` option:

* ``bnaf`` (default): Block Neural Autoregressive Flow (De Cao et al. 2019), :class:`BNAFModel`
  (official ``models/bnaf.py``), keys ``model.<block>.<layer>._weight / _diag_weight / bias / mask_d / mask_o``.
* ``maf``: Masked Autoregressive Flow with RealNVP batch norm (Papamakarios et al. 2017), :class:`MAF`
  (official ``models/maf.py``), keys ``net.<i>.net_input.* / net.<i>.net.<j>.* / net.<i>.log_gamma ...``.
* ``nsf``: autoregressive rational-quadratic Neural Spline Flow (Durkan et al. 2019), :class:`NSF`, the official
  ``models/nsf.py`` built on the ``nflows`` package; reimplemented here with the nflows module tree, so
  ``flow._transform._transforms.*`` keys load without the (unmaintained) package.
* anything else: :class:`MAFMOG` (MAF followed by a mixture-of-Gaussians MADE, random input order).

:class:`PatchDensityEstimator` is the official ``networks.PatchDensityEstimator``: one flow per feature layer
(``flow_<i>``) plus the ``initialized`` flag. The official code creates the flows lazily on the first forward; here
they are built eagerly from the known channel counts, so optimizers and checkpoints see them from the start.
Flows always compute in float32 (autocast is disabled inside), whatever the surrounding precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BNAFModel",
    "MAF",
    "MAFMOG",
    "NSF",
    "FLOW_TYPES",
    "build_flow",
    "PatchDensityEstimator",
    "sample_patch_ids",
    "gather_patches",
]

#: Flow types of the official ``--flow_type`` option; any other value selects MAF-MoG, as in the official code.
FLOW_TYPES = ("bnaf", "maf", "nsf", "mafmog")

_LOG_2PI = math.log(2 * math.pi)


def _standard_normal_log_prob(z: Tensor) -> Tensor:
    """Sum over the last dim of log N(z; 0, 1): (N, d) -> (N,)."""
    return (-0.5 * z.pow(2) - 0.5 * _LOG_2PI).sum(-1)


def _normal_log_prob(z: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """Element-wise log N(z; mean, scale) (``torch.distributions.Normal`` without the distribution object)."""
    return -((z - mean) ** 2) / (2 * scale**2) - scale.log() - 0.5 * _LOG_2PI


# --------------------------------------------------------------------------------------------------------------------
# BNAF
# --------------------------------------------------------------------------------------------------------------------


class MaskedWeight(nn.Module):
    """Block lower-triangular linear layer with positive diagonal blocks and weight normalisation (BNAF).

    ``in_features`` and ``out_features`` are totals over the ``dim`` flow dimensions (``dim`` blocks each).

    Shape:
        (N, in_features) -> (N, out_features), plus the log diagonal Jacobian blocks (N, dim, out/dim) when given
        those of the previous layers (N, dim, in/dim).
    """

    def __init__(self, in_features: int, out_features: int, dim: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features, self.dim = in_features, out_features, dim
        out_d, in_d = out_features // dim, in_features // dim
        weight = torch.zeros(out_features, in_features)
        for i in range(dim):
            weight[i * out_d:(i + 1) * out_d, 0:(i + 1) * in_d] = nn.init.xavier_uniform_(
                torch.empty(out_d, (i + 1) * in_d))
        self._weight = nn.Parameter(weight)
        self._diag_weight = nn.Parameter(nn.init.uniform_(torch.empty(out_features, 1)).log())
        bound = 1 / math.sqrt(out_features)
        self.bias = nn.Parameter(nn.init.uniform_(torch.empty(out_features), -bound, bound)) if bias else None
        mask_d = torch.zeros_like(weight)
        mask_o = torch.ones_like(weight)
        for i in range(dim):
            mask_d[i * out_d:(i + 1) * out_d, i * in_d:(i + 1) * in_d] = 1
            mask_o[i * out_d:(i + 1) * out_d, i * in_d:] = 0
        self.register_buffer("mask_d", mask_d)
        self.register_buffer("mask_o", mask_o)

    def get_weights(self) -> tuple[Tensor, Tensor]:
        """(in, out) weight matrix and the log diagonal blocks (dim, out/dim, in/dim)."""
        w = torch.exp(self._weight) * self.mask_d + self._weight * self.mask_o
        w_squared_norm = (w**2).sum(-1, keepdim=True)
        w = self._diag_weight.exp() * w / w_squared_norm.sqrt()
        wpl = self._diag_weight + self._weight - 0.5 * torch.log(w_squared_norm)
        dim, out_d, in_d = self.dim, self.out_features // self.dim, self.in_features // self.dim
        blocks = torch.diagonal(wpl.view(dim, out_d, dim, in_d), dim1=0, dim2=2).permute(2, 0, 1)
        return w.t(), blocks

    def forward(self, inputs: Tensor, grad: Tensor | None = None) -> tuple[Tensor, Tensor]:
        w, blocks = self.get_weights()
        out = inputs.matmul(w)
        if self.bias is not None:
            out = out + self.bias
        if grad is None:  # first layer: one input per block, the Jacobian blocks do not depend on the sample
            return out, blocks.squeeze(-1).expand(inputs.shape[0], -1, -1)
        return out, torch.logsumexp(blocks.unsqueeze(0) + grad.unsqueeze(-2), -1)


class BNAFTanh(nn.Tanh):
    """tanh with its log derivative added to the running log Jacobian blocks."""

    def forward(self, inputs: Tensor, grad: Tensor | None = None) -> tuple[Tensor, Tensor]:
        g = -2 * (inputs - math.log(2) + F.softplus(-2 * inputs))
        return torch.tanh(inputs), (g.view(grad.shape) + grad) if grad is not None else g


class BNAFBlock(nn.Sequential):
    """One BNAF transformation (official ``BNAF``): masked layers and tanh, optional ``normal``/``gated`` residual."""

    def __init__(self, *layers: nn.Module, res: str | None = None) -> None:
        super().__init__(*layers)
        self.res = res
        if res == "gated":
            self.gate = nn.Parameter(nn.init.normal_(torch.empty(1)))

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        outputs, grad = inputs, None
        for module in self:
            outputs, grad = module(outputs, grad)
        grad = grad.squeeze(-1) if grad.dim() == 3 else grad  # (N, dim): the last layer has one output per block
        if self.res == "normal":
            return inputs + outputs, F.softplus(grad).sum(-1)
        if self.res == "gated":
            gate = self.gate.sigmoid()
            return gate * outputs + (1 - gate) * inputs, (F.softplus(grad + self.gate) - F.softplus(self.gate)).sum(-1)
        return outputs, grad.sum(-1)


class FlipPermutation(nn.Module):
    """Reverses the feature order (official ``Permutation(d, 'flip')``); no parameters."""

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor | float]:
        return inputs.flip(-1), 0.0


class _LogDetSequential(nn.Sequential):
    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        log_det: Tensor | float = 0.0
        for module in self:
            inputs, ld = module(inputs)
            log_det = log_det + ld
        return inputs, log_det


class BNAFModel(nn.Module):
    """Official ``BNAFModel(num_inputs, n_flows, n_layers, hidden_dim)``.

    ``n_flows`` blocks ``[MaskedWeight(d, d*h), Tanh, (MaskedWeight(d*h, d*h), Tanh) x (n_layers - 1),
    MaskedWeight(d*h, d)]``, all but the last with a gated residual, separated by flip permutations.

    Shape:
        ``model(x)``: (N, d) -> z (N, d), log|det J| (N,); ``log_probs(x)``: (N, d) -> (N,).
    """

    def __init__(self, num_inputs: int, n_flows: int = 5, n_layers: int = 0, hidden_dim: int = 10,
                 residual: str | None = "gated") -> None:
        super().__init__()
        d, h = num_inputs, num_inputs * hidden_dim
        flows: list[nn.Module] = []
        for f in range(n_flows):
            layers: list[nn.Module] = [MaskedWeight(d, h, dim=d), BNAFTanh()]
            for _ in range(n_layers - 1):
                layers += [MaskedWeight(h, h, dim=d), BNAFTanh()]
            layers.append(MaskedWeight(h, d, dim=d))
            flows.append(BNAFBlock(*layers, res=residual if f < n_flows - 1 else None))
            if f < n_flows - 1:
                flows.append(FlipPermutation())
        self.model = _LogDetSequential(*flows)

    def log_probs(self, x: Tensor) -> Tensor:
        z, log_det = self.model(x)
        return _standard_normal_log_prob(z) + log_det

    forward = log_probs


# --------------------------------------------------------------------------------------------------------------------
# MAF / MAF-MoG (official models/maf.py)
# --------------------------------------------------------------------------------------------------------------------


def create_masks(input_size: int, hidden_size: int, n_hidden: int, input_order: str = "sequential",
                 input_degrees: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
    """MADE connectivity masks (MADE paper Sec. 4); ``random`` order draws degrees from torch's RNG."""
    degrees: list[Tensor] = []
    if input_order == "sequential":
        degrees.append(torch.arange(input_size) if input_degrees is None else input_degrees)
        for _ in range(n_hidden + 1):
            degrees.append(torch.arange(hidden_size) % (input_size - 1))
        degrees.append(torch.arange(input_size) % input_size - 1 if input_degrees is None
                       else input_degrees % input_size - 1)
    elif input_order == "random":
        degrees.append(torch.randperm(input_size) if input_degrees is None else input_degrees)
        for _ in range(n_hidden + 1):
            low = min(degrees[-1].min().item(), input_size - 1)
            degrees.append(torch.randint(low, input_size, (hidden_size,)))
        low = min(degrees[-1].min().item(), input_size - 1)
        degrees.append(torch.randint(low, input_size, (input_size,)) - 1 if input_degrees is None
                       else input_degrees - 1)
    else:
        raise ValueError(f"input_order must be 'sequential' or 'random', got {input_order!r}")
    masks = [(d1.unsqueeze(-1) >= d0.unsqueeze(0)).float() for d0, d1 in zip(degrees[:-1], degrees[1:], strict=False)]
    return masks, degrees[0]


class MaskedLinear(nn.Linear):
    """MADE layer: ``x @ (weight * mask).T + bias`` (mask is a buffer)."""

    def __init__(self, input_size: int, n_outputs: int, mask: Tensor) -> None:
        super().__init__(input_size, n_outputs)
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"activation must be 'relu' or 'tanh', got {name!r}")


class _MADEBase(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, n_hidden: int, out_mult: int, activation: str,
                 input_order: str, input_degrees: Tensor | None) -> None:
        super().__init__()
        self.register_buffer("base_dist_mean", torch.zeros(input_size))
        self.register_buffer("base_dist_var", torch.ones(input_size))
        masks, self.input_degrees = create_masks(input_size, hidden_size, n_hidden, input_order, input_degrees)
        act = _activation(activation)
        self.net_input = MaskedLinear(input_size, hidden_size, masks[0])
        layers: list[nn.Module] = []
        for m in masks[1:-1]:
            layers += [act, MaskedLinear(hidden_size, hidden_size, m)]
        layers += [act, MaskedLinear(hidden_size, out_mult * input_size, masks[-1].repeat(out_mult, 1))]
        self.net = nn.Sequential(*layers)


class MADE(_MADEBase):
    """Gaussian MADE: ``u = (x - m(x)) * exp(-log_a(x))``, log|det| = ``-log_a`` (per dimension)."""

    def __init__(self, input_size: int, hidden_size: int, n_hidden: int, activation: str = "relu",
                 input_order: str = "sequential", input_degrees: Tensor | None = None) -> None:
        super().__init__(input_size, hidden_size, n_hidden, 2, activation, input_order, input_degrees)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        m, loga = self.net(self.net_input(x)).chunk(2, dim=1)
        return (x - m) * torch.exp(-loga), -loga


class MADEMOG(_MADEBase):
    """Mixture-of-Gaussians MADE: per component mean, log scale and mixture logit for every dimension."""

    def __init__(self, n_components: int, input_size: int, hidden_size: int, n_hidden: int, activation: str = "relu",
                 input_order: str = "sequential", input_degrees: Tensor | None = None) -> None:
        super().__init__(input_size, hidden_size, n_hidden, n_components * 3, activation, input_order, input_degrees)
        self.n_components = n_components

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, L) -> u (N, C, L), log|det| (N, C, L), normalised log responsibilities (N, C, L)."""
        n, length = x.shape
        m, loga, logr = self.net(self.net_input(x)).view(n, self.n_components, 3 * length).chunk(3, dim=-1)
        u = (x.unsqueeze(1) - m) * torch.exp(-loga)
        return u, -loga, logr - logr.logsumexp(1, keepdim=True)


class MAFBatchNorm(nn.Module):
    """RealNVP batch norm of the official MAF: train mode uses the batch mean and the *unbiased* batch variance and
    moves the running statistics with momentum 0.9 (``running = 0.9 * running + 0.1 * batch``)."""

    def __init__(self, input_size: int, momentum: float = 0.9, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.log_gamma = nn.Parameter(torch.zeros(input_size))
        self.beta = nn.Parameter(torch.zeros(input_size))
        self.register_buffer("running_mean", torch.zeros(input_size))
        self.register_buffer("running_var", torch.ones(input_size))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            mean, var = x.mean(0), x.var(0)
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_(mean.detach() * (1 - self.momentum))
                self.running_var.mul_(self.momentum).add_(var.detach() * (1 - self.momentum))
        else:
            mean, var = self.running_mean, self.running_var
        y = self.log_gamma.exp() * ((x - mean) / torch.sqrt(var + self.eps)) + self.beta
        return y, (self.log_gamma - 0.5 * torch.log(var + self.eps)).expand_as(x)


class _FlowSequential(nn.Sequential):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        total: Tensor | float = 0.0
        for module in self:
            x, ld = module(x)
            total = total + ld
        return x, total


class MAF(nn.Module):
    """Official ``MAF(input_size, n_blocks, hidden_size, n_hidden)``: ``n_blocks`` x (MADE, BatchNorm), the MADE
    input order flipped from block to block.

    Shape:
        ``log_probs``: (N, d) -> (N,).
    """

    def __init__(self, input_size: int, n_blocks: int = 5, hidden_size: int = 1024, n_hidden: int = 2,
                 activation: str = "relu", input_order: str = "sequential", batch_norm: bool = True) -> None:
        super().__init__()
        self.register_buffer("base_dist_mean", torch.zeros(input_size))
        self.register_buffer("base_dist_var", torch.ones(input_size))
        modules: list[nn.Module] = []
        self.input_degrees: Tensor | None = None
        for _ in range(n_blocks):
            modules.append(MADE(input_size, hidden_size, n_hidden, activation, input_order, self.input_degrees))
            self.input_degrees = modules[-1].input_degrees.flip(0)
            if batch_norm:
                modules.append(MAFBatchNorm(input_size))
        self.net = _FlowSequential(*modules)

    def log_probs(self, x: Tensor) -> Tensor:
        u, log_det = self.net(x)
        # the official base distribution is Normal(mean, var) with var used as the scale (both 0/1: same thing)
        return torch.sum(_normal_log_prob(u, self.base_dist_mean, self.base_dist_var) + log_det, dim=1)

    forward = log_probs


class MAFMOG(nn.Module):
    """Official ``MAFMOG(n_blocks, n_components, input_size, hidden_size, n_hidden, input_order)``: a MAF followed by
    a mixture-of-Gaussians MADE whose input order continues the MAF's.

    Shape:
        ``log_probs``: (N, d) -> (N,).
    """

    def __init__(self, n_blocks: int, n_components: int, input_size: int, hidden_size: int, n_hidden: int,
                 activation: str = "relu", input_order: str = "sequential", batch_norm: bool = True) -> None:
        super().__init__()
        self.register_buffer("base_dist_mean", torch.zeros(input_size))
        self.register_buffer("base_dist_var", torch.ones(input_size))
        self.maf = MAF(input_size, n_blocks, hidden_size, n_hidden, activation, input_order, batch_norm)
        self.mademog = MADEMOG(n_components, input_size, hidden_size, n_hidden, activation, input_order,
                               self.maf.input_degrees)

    def log_probs(self, x: Tensor) -> Tensor:
        u, maf_log_det = self.maf.net(x)
        u, made_log_det, logr = self.mademog(u)
        log_det = maf_log_det.unsqueeze(1) + made_log_det
        base = _normal_log_prob(u, self.base_dist_mean, self.base_dist_var)
        return torch.logsumexp(logr + base + log_det, dim=1).sum(1)

    forward = log_probs


# --------------------------------------------------------------------------------------------------------------------
# NSF (official models/nsf.py on nflows 0.14: module tree and numerics of nflows reproduced)
# --------------------------------------------------------------------------------------------------------------------


class _Composite(nn.Module):
    """nflows ``CompositeTransform``: applies ``_transforms`` in order, summing the log-determinants."""

    def __init__(self, transforms: Sequence[nn.Module]) -> None:
        super().__init__()
        self._transforms = nn.ModuleList(transforms)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for t in self._transforms:
            x, ld = t(x)
            total = total + ld
        return x, total


class _NflowsBatchNorm(nn.Module):
    """nflows ``BatchNorm`` transform: weight = softplus(unconstrained) + eps, momentum 0.1, unbiased batch var."""

    def __init__(self, features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        constant = math.log(math.exp(1 - eps) - 1)
        self.unconstrained_weight = nn.Parameter(constant * torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.zeros(features))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            mean, var = x.mean(0), x.var(0)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach() * self.momentum)
                self.running_var.mul_(1 - self.momentum).add_(var.detach() * self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        weight = F.softplus(self.unconstrained_weight) + self.eps
        out = weight * ((x - mean) / torch.sqrt(var + self.eps)) + self.bias
        log_det = torch.sum(torch.log(weight) - 0.5 * torch.log(var + self.eps))
        return out, log_det * x.new_ones(x.shape[0])


class _RandomPermutation(nn.Module):
    """nflows ``RandomPermutation``: ``x[:, perm]`` with the permutation stored as the buffer ``_permutation``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("_permutation", torch.randperm(features))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.index_select(1, self._permutation), x.new_zeros(x.shape[0])


class _LULinear(nn.Module):
    """nflows ``LULinear(identity_init=True)``: ``W = L U`` with unit-diagonal L and softplus-positive diag(U)."""

    def __init__(self, features: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.features, self.eps = features, eps
        n_tri = (features - 1) * features // 2
        self.lower_entries = nn.Parameter(torch.zeros(n_tri))
        self.upper_entries = nn.Parameter(torch.zeros(n_tri))
        self.unconstrained_upper_diag = nn.Parameter(torch.full((features,), math.log(math.exp(1 - eps) - 1)))
        self.bias = nn.Parameter(torch.zeros(features))
        lower = np.tril_indices(features, k=-1)
        upper = np.triu_indices(features, k=1)
        self._lower = (torch.as_tensor(lower[0]), torch.as_tensor(lower[1]))
        self._upper = (torch.as_tensor(upper[0]), torch.as_tensor(upper[1]))

    def _upper_diag(self) -> Tensor:
        return F.softplus(self.unconstrained_upper_diag) + self.eps

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n = self.features
        lower = self.lower_entries.new_zeros(n, n).index_put((self._lower[0].to(x.device),
                                                              self._lower[1].to(x.device)), self.lower_entries)
        lower = lower + torch.eye(n, device=x.device, dtype=lower.dtype)
        upper = self.upper_entries.new_zeros(n, n).index_put((self._upper[0].to(x.device),
                                                              self._upper[1].to(x.device)), self.upper_entries)
        upper = upper + torch.diag(self._upper_diag())
        out = F.linear(F.linear(x, upper), lower, self.bias)
        return out, torch.sum(torch.log(self._upper_diag())) * x.new_ones(x.shape[0])


def _input_degrees(features: int) -> Tensor:
    return torch.arange(1, features + 1)


class _NflowsMaskedLinear(nn.Linear):
    """nflows ``MaskedLinear`` (sequential degrees; buffers ``mask`` and ``degrees``)."""

    def __init__(self, in_degrees: Tensor, out_features: int, autoregressive_features: int, is_output: bool,
                 bias: bool = True) -> None:
        super().__init__(len(in_degrees), out_features, bias)
        if is_output:
            out_degrees = _input_degrees(autoregressive_features).repeat_interleave(
                out_features // autoregressive_features)
            mask = (out_degrees[..., None] > in_degrees).float()
        else:
            max_, min_ = max(1, autoregressive_features - 1), min(1, autoregressive_features - 1)
            out_degrees = torch.arange(out_features) % max_ + min_
            mask = (out_degrees[..., None] >= in_degrees).float()
        self.register_buffer("mask", mask)
        self.register_buffer("degrees", out_degrees)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class _MaskedResidualBlock(nn.Module):
    """nflows ``MaskedResidualBlock`` (no batch norm): ``x + L1(dropout(relu(L0(relu(x)))))``, L1 near zero."""

    def __init__(self, in_degrees: Tensor, autoregressive_features: int, dropout_probability: float) -> None:
        super().__init__()
        features = len(in_degrees)
        linear_0 = _NflowsMaskedLinear(in_degrees, features, autoregressive_features, is_output=False)
        linear_1 = _NflowsMaskedLinear(linear_0.degrees, features, autoregressive_features, is_output=False)
        self.linear_layers = nn.ModuleList([linear_0, linear_1])
        self.degrees = linear_1.degrees
        self.dropout = nn.Dropout(p=dropout_probability)
        nn.init.uniform_(linear_1.weight, a=-1e-3, b=1e-3)
        nn.init.uniform_(linear_1.bias, a=-1e-3, b=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        t = self.linear_layers[0](F.relu(x))
        t = self.linear_layers[1](self.dropout(F.relu(t)))
        return x + t


class _NflowsMADE(nn.Module):
    def __init__(self, features: int, hidden_features: int, num_blocks: int, output_multiplier: int,
                 dropout_probability: float) -> None:
        super().__init__()
        self.initial_layer = _NflowsMaskedLinear(_input_degrees(features), hidden_features, features, is_output=False)
        blocks, degrees = [], self.initial_layer.degrees
        for _ in range(num_blocks):
            blocks.append(_MaskedResidualBlock(degrees, features, dropout_probability))
            degrees = blocks[-1].degrees
        self.blocks = nn.ModuleList(blocks)
        self.final_layer = _NflowsMaskedLinear(degrees, features * output_multiplier, features, is_output=True)

    def forward(self, x: Tensor) -> Tensor:
        t = self.initial_layer(x)
        for block in self.blocks:
            t = block(t)
        return self.final_layer(t)


def _rational_quadratic_spline(inputs: Tensor, widths: Tensor, heights: Tensor, derivatives: Tensor, *,
                               bound: float, min_bin_width: float = 1e-3, min_bin_height: float = 1e-3,
                               min_derivative: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Forward monotone rational-quadratic spline on [-bound, bound] (nflows ``rational_quadratic_spline``)."""
    num_bins = widths.shape[-1]
    left, right, bottom, top = -bound, bound, -bound, bound
    widths = F.softmax(widths, dim=-1)
    widths = min_bin_width + (1 - min_bin_width * num_bins) * widths
    cumwidths = F.pad(torch.cumsum(widths, dim=-1), pad=(1, 0), mode="constant", value=0.0)
    cumwidths = (right - left) * cumwidths + left
    cumwidths = torch.cat([cumwidths.new_full(cumwidths[..., :1].shape, left), cumwidths[..., 1:-1],
                           cumwidths.new_full(cumwidths[..., :1].shape, right)], -1)
    widths = cumwidths[..., 1:] - cumwidths[..., :-1]
    derivatives = min_derivative + F.softplus(derivatives)
    heights = F.softmax(heights, dim=-1)
    heights = min_bin_height + (1 - min_bin_height * num_bins) * heights
    cumheights = F.pad(torch.cumsum(heights, dim=-1), pad=(1, 0), mode="constant", value=0.0)
    cumheights = (top - bottom) * cumheights + bottom
    cumheights = torch.cat([cumheights.new_full(cumheights[..., :1].shape, bottom), cumheights[..., 1:-1],
                            cumheights.new_full(cumheights[..., :1].shape, top)], -1)
    heights = cumheights[..., 1:] - cumheights[..., :-1]

    locations = torch.cat([cumwidths[..., :-1], cumwidths[..., -1:] + 1e-6], -1)
    bin_idx = (torch.sum(inputs[..., None] >= locations, dim=-1) - 1)[..., None]
    in_cumwidths = cumwidths.gather(-1, bin_idx)[..., 0]
    in_widths = widths.gather(-1, bin_idx)[..., 0]
    in_cumheights = cumheights.gather(-1, bin_idx)[..., 0]
    delta = heights / widths
    in_delta = delta.gather(-1, bin_idx)[..., 0]
    in_derivatives = derivatives.gather(-1, bin_idx)[..., 0]
    in_derivatives_plus_one = derivatives[..., 1:].gather(-1, bin_idx)[..., 0]
    in_heights = heights.gather(-1, bin_idx)[..., 0]

    theta = (inputs - in_cumwidths) / in_widths
    theta_one_minus_theta = theta * (1 - theta)
    numerator = in_heights * (in_delta * theta.pow(2) + in_derivatives * theta_one_minus_theta)
    denominator = in_delta + (in_derivatives + in_derivatives_plus_one - 2 * in_delta) * theta_one_minus_theta
    outputs = in_cumheights + numerator / denominator
    derivative_numerator = in_delta.pow(2) * (in_derivatives_plus_one * theta.pow(2)
                                              + 2 * in_delta * theta_one_minus_theta
                                              + in_derivatives * (1 - theta).pow(2))
    return outputs, torch.log(derivative_numerator) - 2 * torch.log(denominator)


class _MaskedRQAutoregressive(nn.Module):
    """nflows ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform`` with linear tails (identity outside the
    ``tail_bound`` interval)."""

    def __init__(self, features: int, hidden_features: int, num_blocks: int, num_bins: int, tail_bound: float,
                 dropout_probability: float) -> None:
        super().__init__()
        self.num_bins, self.tail_bound = num_bins, tail_bound
        self.autoregressive_net = _NflowsMADE(features, hidden_features, num_blocks, num_bins * 3 - 1,
                                              dropout_probability)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n, d = x.shape
        params = self.autoregressive_net(x).view(n, d, self.num_bins * 3 - 1)
        widths, heights = params[..., :self.num_bins], params[..., self.num_bins:2 * self.num_bins]
        derivatives = params[..., 2 * self.num_bins:]
        constant = math.log(math.exp(1 - 1e-3) - 1)
        derivatives = F.pad(derivatives, pad=(1, 1), value=constant)
        inside = (x >= -self.tail_bound) & (x <= self.tail_bound)
        # evaluate the spline everywhere on clamped inputs, then keep the identity outside: same values as nflows'
        # masked evaluation, without data-dependent shapes
        clamped = torch.where(inside, x, torch.zeros_like(x))
        y, log_det = _rational_quadratic_spline(clamped, widths, heights, derivatives, bound=self.tail_bound)
        y = torch.where(inside, y, x)
        log_det = torch.where(inside, log_det, torch.zeros_like(log_det))
        return y, log_det.sum(-1)


class _NflowsFlow(nn.Module):
    def __init__(self, transform: nn.Module) -> None:
        super().__init__()
        self._transform = transform

    def log_prob(self, x: Tensor) -> Tensor:
        z, log_det = self._transform(x)
        return _standard_normal_log_prob(z) + log_det


class NSF(nn.Module):
    """Official ``NSF(input_dim, num_blocks)``: per block BatchNorm -> (random permutation, LU linear) -> masked
    rational-quadratic autoregressive transform (8 bins, tail bound 3, 2 residual blocks of 256, dropout 0.25),
    then a final (permutation, LU linear); standard normal base.

    Shape:
        ``log_probs``: (N, d) -> (N,).
    """

    def __init__(self, input_dim: int, num_blocks: int, *, hidden_features: int = 256, num_transform_blocks: int = 2,
                 dropout_probability: float = 0.25, num_bins: int = 8, tail_bound: float = 3.0) -> None:
        super().__init__()

        def linear() -> nn.Module:
            return _Composite([_RandomPermutation(input_dim), _LULinear(input_dim)])

        steps: list[nn.Module] = [
            _Composite([_NflowsBatchNorm(input_dim), linear(),
                        _MaskedRQAutoregressive(input_dim, hidden_features, num_transform_blocks, num_bins,
                                                tail_bound, dropout_probability)])
            for _ in range(num_blocks)
        ]
        self.flow = _NflowsFlow(_Composite([*steps, linear()]))

    def log_probs(self, x: Tensor) -> Tensor:
        return self.flow.log_prob(x)

    forward = log_probs


# --------------------------------------------------------------------------------------------------------------------
# Patch density estimator
# --------------------------------------------------------------------------------------------------------------------


def build_flow(flow_type: str, input_nc: int, *, flow_blocks: int = 1, bnaf_layers: int = 0, bnaf_dim: int = 10,
               maf_dim: int = 1024, maf_layers: int = 2, maf_comps: int = 10) -> nn.Module:
    """The flow the official ``PatchDensityEstimator.create_flow`` builds for ``flow_type`` and ``input_nc`` dims."""
    if flow_type == "maf":
        return MAF(input_nc, n_blocks=flow_blocks, hidden_size=maf_dim, n_hidden=maf_layers)
    if flow_type == "bnaf":
        return BNAFModel(input_nc, n_flows=flow_blocks, n_layers=bnaf_layers, hidden_dim=bnaf_dim)
    if flow_type == "nsf":
        return NSF(input_nc, flow_blocks)
    return MAFMOG(flow_blocks, maf_comps, input_nc, maf_dim, maf_layers, input_order="random")


def sample_patch_ids(num_positions: int, num_patches: int, *, device: torch.device | str = "cpu",
                     generator: torch.Generator | None = None) -> Tensor:
    """``min(num_patches, num_positions)`` distinct flat positions (h * W + w), shared by every image of a batch.

    Drawn from torch's CPU generator (the official code uses numpy's), so seeding torch makes training repeatable.
    """
    ids = torch.randperm(num_positions, generator=generator)[:min(num_patches, num_positions)]
    return ids.to(device, non_blocking=True)


def gather_patches(feat: Tensor, ids: Tensor) -> Tensor:
    """Feature vectors at ``ids``: (B, C, H, W), (P,) -> (B * P, C), image-major (all P of image 0 first)."""
    b, c = feat.shape[:2]
    return feat.flatten(2).index_select(2, ids).transpose(1, 2).reshape(b * ids.numel(), c)


class PatchDensityEstimator(nn.Module):
    """One flow per feature layer (``flow_<i>``) over sampled feature vectors (official ``PatchDensityEstimator``).

    Args:
        channels: feature dimension of each layer, e.g. ``[3, 128, 256, 256, 256]`` for DECENT's default layers
            of an ngf-64 generator.
        flow_type: ``bnaf``, ``maf``, ``nsf``; any other value builds MAF-MoG (official behaviour).
        flow_blocks, bnaf_layers, bnaf_dim, maf_dim, maf_layers, maf_comps: official flow sizes.
    """

    def __init__(self, channels: Sequence[int], *, flow_type: str = "bnaf", flow_blocks: int = 1,
                 bnaf_layers: int = 0, bnaf_dim: int = 10, maf_dim: int = 1024, maf_layers: int = 2,
                 maf_comps: int = 10) -> None:
        super().__init__()
        self.channels = list(channels)
        self.register_buffer("initialized", torch.tensor(1, dtype=torch.uint8))
        for i, c in enumerate(self.channels):
            setattr(self, f"flow_{i}", build_flow(flow_type, c, flow_blocks=flow_blocks, bnaf_layers=bnaf_layers,
                                                  bnaf_dim=bnaf_dim, maf_dim=maf_dim, maf_layers=maf_layers,
                                                  maf_comps=maf_comps))

    def flow(self, i: int) -> nn.Module:
        return getattr(self, f"flow_{i}")

    def forward(self, feats: Sequence[Tensor], num_patches: int = 256, patch_ids: Sequence[Tensor] | None = None,
                detach: bool = False, weights: dict[str, Tensor] | None = None,
                ) -> tuple[list[Tensor], list[int], list[Tensor]]:
        """Log-densities of sampled feature vectors.

        Args:
            feats: per layer (B, C_l, H_l, W_l).
            num_patches: positions per layer (the same for every image of the batch).
            patch_ids: per layer (P,) flat positions to use instead of sampling.
            detach: cut the graph to the features (flow training).
            weights: ``{parameter name: tensor}`` of this estimator to use instead of its parameters (e.g. the
                polyak EMA copy); buffers are always the module's own.

        Returns:
            Per layer: log p (B * P,) float32 natural log, feature dimension C_l, and the positions used.
        """
        if num_patches <= 0:
            raise ValueError("num_patches must be > 0: the flows take (N, C) vectors (the official code fails too)")
        if len(feats) != len(self.channels):
            raise ValueError(f"expected {len(self.channels)} feature maps, got {len(feats)}")
        log_probs, lens, ids_out = [], [], []
        device_type = feats[0].device.type
        for i, feat in enumerate(feats):
            if feat.shape[1] != self.channels[i]:
                raise ValueError(f"layer {i}: expected {self.channels[i]} channels, got {feat.shape[1]}")
            ids = patch_ids[i] if patch_ids is not None else sample_patch_ids(
                feat.shape[2] * feat.shape[3], num_patches, device=feat.device)
            ids = torch.as_tensor(ids, dtype=torch.long, device=feat.device)
            x = gather_patches(feat, ids)
            if detach:
                x = x.detach()
            with torch.autocast(device_type, enabled=False):
                x = x.float()
                flow = self.flow(i)
                if weights is None:
                    lp = flow.log_probs(x)
                else:
                    prefix = f"flow_{i}."
                    own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
                    lp = torch.func.functional_call(flow, own, (x,), strict=False)
            log_probs.append(lp)
            lens.append(feat.shape[1])
            ids_out.append(ids)
        return log_probs, lens, ids_out


class FlowEMA(nn.Module):
    """Polyak average of an estimator's parameters, kept as buffers (saved, moved and broadcast with the model).

    Faithful to the official flow optimizer: the average **starts at zero** and is updated after every flow step
    as ``ema = decay * ema + (1 - decay) * w`` without bias correction.
    """

    def __init__(self, estimator: nn.Module) -> None:
        super().__init__()
        self.names = [n for n, _ in estimator.named_parameters()]
        for name, p in estimator.named_parameters():
            self.register_buffer(name.replace(".", "__"), torch.zeros_like(p, memory_format=torch.contiguous_format))

    def tensors(self) -> dict[str, Tensor]:
        """``{parameter name: averaged tensor}``."""
        return {n: getattr(self, n.replace(".", "__")) for n in self.names}

    @torch.no_grad()
    def update(self, estimator: nn.Module, decay: float) -> None:
        averaged = [getattr(self, n.replace(".", "__")) for n in self.names]
        current = [p.detach() for p in estimator.parameters()]
        torch._foreach_mul_(averaged, decay)
        torch._foreach_add_(averaged, torch._foreach_mul(current, 1 - decay))
