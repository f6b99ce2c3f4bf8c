"""InstaFormer networks (Kim et al., CVPR 2022; github.com/cvlab-kaist/InstaFormer) in the official module layout.

Module paths follow the official ``networks/*`` classes, so the official ``weights_<epoch>/<Net>.pth`` state dicts
(``nn.DataParallel`` files: strip the ``module.`` prefix) load key for key:

* :class:`ContentEncoder` (``ContentEncoder.pth``): reflect pad, 7x7 conv, then ``n_downsampling`` x (3x3 conv,
  instance norm, ReLU, blur-pool); ``forward(x, layers)`` also returns ``model[i]`` outputs (the NCE taps 0, 4, 8:
  the padded input and the two 3x3 conv outputs before their instance norm).
* :class:`StyleEncoder` (``StyleEncoder.pth``): the same trunk, global average pool, 1x1 conv to the style code.
* :class:`~zoo.nets.munit.MLP` (``MLP_Adain.pth``): style code -> AdaIN parameters (MUNIT's ``LinearBlock`` keys).
* :class:`TransformerAggregator` (``Transformer.pth``): the conv stem ``patch_embed`` on the content features plus
  a positional code; with boxes, one token per box (``box_embed`` of its 8x8 RoIAlign features plus a positional
  code of its centre and size) appended; a transformer whose pre-norms are AdaIN over the tokens; split back into
  patch and box tokens.
* :class:`Decoder` (``Decoder.pth``): patch tokens -> image (global branch), or box tokens -> 32x32 box images (box
  branch), through transposed 8x8 convs and the CUT up-sampling trunk.
* :class:`InstaFormerGenerator`: the five networks above as the one generator ``translate`` runs.

The discriminator is CUT's anti-aliased PatchGAN with batch norm and the MLP heads are CUT's patch sampler
(:mod:`zoo.nets.cut`), whose official layouts are the same.

Official behaviour kept on purpose:

* :func:`assign_adain_params`: with the official MLP output of ``2 * embed_C`` every AdaIN layer receives the same
  ``(mean, std)`` pair; only a wider output is split into consecutive chunks (the last chunk then repeats).
* AdaIN normalises each (sample, channel) over all tokens, patch and box tokens together (biased variance, eps
  1e-6); its ``running_mean``/``running_var`` buffers exist (they are in the official files) but are never used.
* Padded boxes (label -1) still become tokens: their RoI features are zeroed, ``box_embed`` adds its bias and the
  positional code is read at the wrapped index ``(-1 * (img_size - 1)).long()``; they take part in attention and in
  the AdaIN statistics, and the box branch of the decoder decodes them.
* G's networks keep PyTorch's default initialisation (the official code never re-initialises them).

One width is not pinned down by the parity fixtures (their tiny configuration has ``embed_C == feat_C``): the first
two convolutions of both stems (``patch_embed``, ``box_embed``) have ``embed_C // 2`` outputs by default;
``stem_channels`` sets another width (e.g. ``feat_C // 2``) should an official checkpoint have one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.nets.cut import Downsample, PatchSampleF, Upsample, patch_nce_loss
from zoo.nets.few_output_conv import Conv2dFewOutputs
from zoo.nets.munit import MLP
from zoo.nets.norm import get_norm_layer
from zoo.nets.padding import ReflectionPad2d

__all__ = [
    "PATCH_SIZE",
    "INSTANCE_PATCHES",
    "ContentEncoder",
    "StyleEncoder",
    "MLP",
    "SinusoidalTable",
    "PatchEmbed",
    "TokenAdaptiveInstanceNorm",
    "AdaINPreNorm",
    "Attention",
    "FeedForward",
    "AdaINTransformer",
    "TransformerAggregator",
    "Decoder",
    "InstaFormerGenerator",
    "adain_layers",
    "split_adain_params",
    "assign_adain_params",
    "extract_box_features",
    "valid_boxes",
    "pad_boxes",
    "compute_nce_loss",
    "instance_nce_loss",
]

#: Side of the square each patch token covers on the content feature map (three stride-2 convolutions), and the
#: RoIAlign output side of a box (which the same stem reduces to one token).
PATCH_SIZE = 8
#: Patches per box in the instance NCE: every position of the 8x8 RoI features.
INSTANCE_PATCHES = PATCH_SIZE * PATCH_SIZE


def _encoder_trunk(input_nc: int, ngf: int, n_downsampling: int) -> list[nn.Module]:
    """Official encoder layers: pad 3, conv 7x7, IN, ReLU, then per step conv 3x3 (stride 1), IN, ReLU, blur-pool."""
    norm = get_norm_layer("instance")
    layers: list[nn.Module] = [ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), norm(ngf), nn.ReLU(True)]
    width = ngf
    for _ in range(n_downsampling):
        layers += [nn.Conv2d(width, 2 * width, 3, padding=1), norm(2 * width), nn.ReLU(True), Downsample(2 * width)]
        width *= 2
    return layers


class ContentEncoder(nn.Module):
    """Official ``ContentEncoder(input_nc, ngf, n_downsampling)`` (keys ``model.<i>.*``, blur filters included).

    Shape:
        (B, input_nc, H, W) -> (B, ngf * 2**n_downsampling, H / 2**n_downsampling, W / 2**n_downsampling).
    """

    def __init__(self, input_nc: int = 3, ngf: int = 64, n_downsampling: int = 2) -> None:
        super().__init__()
        self.model = nn.Sequential(*_encoder_trunk(input_nc, ngf, n_downsampling))
        self.input_nc = input_nc
        self.output_nc = ngf * 2**n_downsampling

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """Channels of the outputs of ``model[i]`` for ``i`` in ``layers``."""
        per_layer, channels = [], self.input_nc
        for module in self.model:
            if isinstance(module, nn.Conv2d):
                channels = module.out_channels
            per_layer.append(channels)
        for i in layers:
            if not 0 <= i < len(per_layer):
                raise ValueError(f"feature layer {i} out of range: the content encoder has layers "
                                 f"0..{len(per_layer) - 1}")
        return [per_layer[i] for i in layers]

    def forward(self, x: Tensor, layers: Sequence[int] = ()) -> tuple[Tensor, list[Tensor]]:
        """Content features and the outputs of ``model[i]`` for ``i`` in ``layers`` (in that order).

        Shape:
            x (B, input_nc, H, W) in [-1, 1] -> (B, C, H / 4, W / 4) and per layer (B, C_i, H_i, W_i).
        """
        wanted = {i: position for position, i in enumerate(layers)}
        feats: list[Tensor | None] = [None] * len(layers)
        for i, module in enumerate(self.model):
            x = module(x)
            if i in wanted:
                feats[wanted[i]] = x
        return x, feats  # type: ignore[return-value]


class StyleEncoder(nn.Module):
    """Official ``StyleEncoder(input_nc, ngf, style_dim, n_downsampling)``: the content trunk, global average pool,
    1x1 conv (keys ``model.<i>.*``).

    Shape:
        (B, input_nc, H, W) -> (B, style_dim, 1, 1).
    """

    def __init__(self, input_nc: int = 3, ngf: int = 64, style_dim: int = 8, n_downsampling: int = 2) -> None:
        super().__init__()
        width = ngf * 2**n_downsampling
        self.model = nn.Sequential(*_encoder_trunk(input_nc, ngf, n_downsampling), nn.AdaptiveAvgPool2d(1),
                                   nn.Conv2d(width, style_dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class SinusoidalTable(nn.Module):
    """The official ``PositionalEncoding`` table: buffer ``pe`` (length, 1, dim), ``sin`` on even and ``cos`` on odd
    features, frequencies ``10000 ** (-2i / dim)``."""

    def __init__(self, dim: int, length: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"the positional table needs an even width, got {dim}")
        position = torch.arange(length).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        pe = torch.zeros(length, 1, dim)
        pe[:, 0, 0::2] = torch.sin(position * frequency)
        pe[:, 0, 1::2] = torch.cos(position * frequency)
        self.register_buffer("pe", pe)

    def rows(self, index: Tensor | int) -> Tensor:
        """Codes at ``index`` (any integer shape; negative indices wrap): (*index.shape, dim)."""
        return self.pe[index, 0]


class PatchEmbed(nn.Module):
    """Official ``PatchEmbed`` (STEM): three stride-2 3x3 convs and a 1x1 conv, no activations (keys ``proj.<i>``);
    the first two convs have ``stem_channels`` outputs (default ``embed_dim // 2``).

    Shape:
        (B, in_channels, S, S) -> (B, (S / 8)^2, embed_dim) tokens, row-major.
    """

    def __init__(self, in_channels: int, embed_dim: int, stem_channels: int | None = None) -> None:
        super().__init__()
        half = stem_channels or embed_dim // 2
        self.proj = nn.Sequential(nn.Conv2d(in_channels, half, 3, stride=2, padding=1),
                                  nn.Conv2d(half, half, 3, stride=2, padding=1),
                                  nn.Conv2d(half, embed_dim, 3, stride=2, padding=1),
                                  nn.Conv2d(embed_dim, embed_dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class TokenAdaptiveInstanceNorm(nn.Module):
    """Official ``AdaptiveInstanceNorm2d`` applied to tokens (the ``PreInstanceNorm`` of the AdaIN transformer).

    Each (sample, channel) is normalised over the token axis (biased variance, ``eps`` 1e-6) and scaled by
    ``weight`` (the style's std) and shifted by ``bias`` (its mean), (B * C,) tensors, sample-major. They are given
    to :meth:`forward` or assigned beforehand (:func:`assign_adain_params`, the official way). The official
    ``running_mean``/``running_var`` buffers are kept for the state-dict layout; they never change and are never used.

    Shape:
        (B, N, C) -> (B, N, C).
    """

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, tokens: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        weight = self.weight if weight is None else weight
        bias = self.bias if bias is None else bias
        if weight is None or bias is None:
            raise RuntimeError("AdaIN needs its weight and bias: pass them or call assign_adain_params first")
        b, n, c = tokens.shape
        x = tokens if tokens.dtype in (torch.float32, torch.float64) else tokens.float()
        x = x.transpose(1, 2).reshape(1, b * c, n)
        out = F.batch_norm(x, None, None, weight.to(x.dtype), bias.to(x.dtype), True, 0.0, self.eps)
        return out.view(b, c, n).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class AdaINPreNorm(nn.Module):
    """``fn(AdaIN(x))`` (official ``PreInstanceNorm``; keys ``norm.*`` and ``fn.*``)."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = TokenAdaptiveInstanceNorm(dim)
        self.fn = fn

    def forward(self, x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        return self.fn(self.norm(x, weight, bias))


class Attention(nn.Module):
    """Multi-head self-attention (official ``vit.Attention``): ``to_qkv`` (with bias), softmax of
    ``q k^T / sqrt(dim_head)``, ``to_out`` = Linear + Dropout.

    Shape:
        (B, N, dim) -> (B, N, dim).
    """

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head**-0.5
        self.to_qkv = nn.Linear(dim, inner * 3)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        attention = (torch.matmul(q, k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = torch.matmul(attention, v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class FeedForward(nn.Module):
    """Official ``vit.FeedForward``: Linear, GELU, Dropout, Linear, Dropout (keys ``net.0``, ``net.3``)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def adain_layers(model: nn.Module) -> list[TokenAdaptiveInstanceNorm]:
    """The AdaIN layers of ``model`` in module order (the order the official code assigns parameters in)."""
    return [m for m in model.modules() if isinstance(m, TokenAdaptiveInstanceNorm)]


def split_adain_params(adain_params: Tensor, model: nn.Module) -> list[tuple[Tensor, Tensor]]:
    """``(weight, bias)`` of every AdaIN layer of ``model`` (module order) from the MLP output, as the official
    ``assign_adain_params`` distributes it.

    Each layer with C channels takes ``mean = p[:, :C]`` as its bias and ``std = p[:, C:2C]`` as its weight, both
    flattened to (B * C,); then ``p`` moves on by 2C **only if it is wider than 2C**. With the official output width
    (``2 * embed_C``) every layer therefore gets the same parameters; a wider output gives consecutive chunks, the
    last one repeating once the output is used up.

    Args:
        adain_params: (B, P) MLP output, P >= 2C.
        model: the module holding the AdaIN layers (the aggregator's transformer).
    """
    out = []
    for layer in adain_layers(model):
        c = layer.num_features
        if adain_params.shape[1] < 2 * c:
            raise ValueError(f"AdaIN parameters of width {adain_params.shape[1]} cannot feed a layer of {c} channels "
                             f"(need at least {2 * c})")
        out.append((adain_params[:, c:2 * c].reshape(-1), adain_params[:, :c].reshape(-1)))
        if adain_params.shape[1] > 2 * c:
            adain_params = adain_params[:, 2 * c:]
    return out


def assign_adain_params(adain_params: Tensor | None, model: nn.Module) -> None:
    """Set ``weight``/``bias`` of every AdaIN layer of ``model`` as the official function does (every layer gets
    the same parameters at the official width: see :func:`split_adain_params`); ``None`` clears them.

    :class:`TransformerAggregator` takes the parameters as an argument instead, so nothing stays attached to the
    modules (deep copies, EMA and compilation need that); this function reproduces the official API.
    """
    layers = adain_layers(model)
    if adain_params is None:
        for layer in layers:
            layer.weight = layer.bias = None
        return
    for layer, (weight, bias) in zip(layers, split_adain_params(adain_params, model), strict=True):
        layer.weight, layer.bias = weight, bias


class AdaINTransformer(nn.Module):
    """Official ``AdaIn_Transformer``: ``depth`` x (``x = attn(AdaIN(x)) + x``, ``x = ff(AdaIN(x)) + x``), keys
    ``layers.<i>.0`` (attention) and ``layers.<i>.1`` (feed-forward).

    Shape:
        (B, N, dim) -> (B, N, dim).
    """

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            nn.ModuleList([AdaINPreNorm(dim, Attention(dim, heads, dim_head, dropout)),
                           AdaINPreNorm(dim, FeedForward(dim, mlp_dim, dropout))])
            for _ in range(depth)])

    def forward(self, x: Tensor, adain_params: Tensor | None = None) -> Tensor:
        """``adain_params`` (B, P): the MLP output (see :func:`split_adain_params`); None uses assigned ones."""
        params = iter(split_adain_params(adain_params, self)) if adain_params is not None else None
        for attention, feed_forward in self.layers:
            x = attention(x, *(next(params) if params is not None else ())) + x
            x = feed_forward(x, *(next(params) if params is not None else ())) + x
        return x


def valid_boxes(boxes: Tensor) -> Tensor:
    """(B, num_box) bool: rows whose label is not -1 (the only padding mark)."""
    return boxes[..., 0] != -1


def pad_boxes(boxes: Tensor | None, batch: int, num_box: int, *, like: Tensor) -> Tensor:
    """``boxes`` (B, n <= num_box, 5) padded with all -1 rows to (B, num_box, 5), in ``like``'s device and dtype;
    ``None``: all padded.

    Raises:
        ValueError: not (B, n, 5) with n <= num_box.
    """
    if boxes is None:
        return torch.full((batch, num_box, 5), -1.0, device=like.device, dtype=like.dtype)
    if boxes.dim() != 3 or boxes.shape[0] != batch or boxes.shape[2] != 5:
        raise ValueError(f"boxes must be (B={batch}, num_box, 5) rows [label, x1, y1, x2, y2] in [0, 1] (padding "
                         f"rows -1); got {tuple(boxes.shape)}")
    if boxes.shape[1] > num_box:
        raise ValueError(f"got {boxes.shape[1]} boxes per image, the model takes at most num_box={num_box}")
    boxes = boxes.to(like.device, like.dtype)
    if boxes.shape[1] < num_box:
        boxes = torch.cat([boxes, boxes.new_full((batch, num_box - boxes.shape[1], 5), -1.0)], 1)
    return boxes


def extract_box_features(features: Tensor, boxes: Tensor, output_size: int = PATCH_SIZE) -> Tensor:
    """Official ``extract_box_feature``: RoIAlign of every box (``torchvision.ops.roi_align``, spatial scale 1,
    adaptive sampling, ``aligned=False``) on ``features`` with the normalised coordinates times the map's width and
    height; rows of padded boxes are zero (and pass no gradient).

    Args:
        features: (B, C, H, W) content features.
        boxes: (B, num_box, 5) rows [label, x1, y1, x2, y2] in [0, 1]; label -1 marks padding.

    Returns:
        (B * num_box, C, output_size, output_size), image-major.
    """
    from torchvision.ops import roi_align

    b, num_box = boxes.shape[:2]
    h, w = features.shape[-2:]
    index = torch.arange(b, device=boxes.device, dtype=features.dtype).repeat_interleave(num_box)
    coords = boxes[..., 1:].reshape(-1, 4).to(features.dtype) * features.new_tensor([w, h, w, h])
    rois = torch.cat([index[:, None], coords], 1)
    pooled = roi_align(features.contiguous(), rois, output_size, spatial_scale=1.0, sampling_ratio=-1,
                       aligned=False)
    keep = valid_boxes(boxes).reshape(-1, 1, 1, 1)
    return torch.where(keep, pooled, torch.zeros((), dtype=pooled.dtype, device=pooled.device))


class TransformerAggregator(nn.Module):
    """Official ``Transformer_Aggregator(img_size, patch_size=8, embed_C, feat_C, depth, heads, mlp_dim)``.

    Args:
        img_size: side of the (square) content feature map it takes (88 for 352-px images).
        embed_c: token width.
        feat_c: content feature channels (``4 * ngf``); also each attention head's width (official
            ``dim_head = feat_C``).
        depth, heads, mlp_dim: transformer depth, heads and feed-forward width.
        dropout: dropout in attention and feed-forward (0 officially).
        stem_channels: outputs of the first two stem convolutions (default ``embed_c // 2``).

    Shape:
        features (B, feat_c, img_size, img_size), boxes (B, num_box, 5) -> patch tokens (B, (img_size / 8)^2,
        embed_c) and box tokens (B, num_box, embed_c) (None without boxes).
    """

    def __init__(self, img_size: int = 88, embed_c: int = 1024, feat_c: int = 256, depth: int = 6, heads: int = 4,
                 mlp_dim: int = 4096, dropout: float = 0.0, stem_channels: int | None = None) -> None:
        super().__init__()
        if img_size % PATCH_SIZE or img_size < PATCH_SIZE:
            raise ValueError(f"img_size must be a positive multiple of {PATCH_SIZE}, got {img_size}")
        if embed_c % 8:
            raise ValueError(f"embed_c must be a multiple of 8 (four even positional codes), got {embed_c}")
        self.img_size = img_size
        self.patch_embed = PatchEmbed(feat_c, embed_c, stem_channels)
        self.box_embed = PatchEmbed(feat_c, embed_c, stem_channels)
        self.pos_embed_x = SinusoidalTable(embed_c // 4, img_size)
        self.pos_embed_y = SinusoidalTable(embed_c // 4, img_size)
        self.pos_embed_w = SinusoidalTable(embed_c // 4, img_size)
        self.pos_embed_h = SinusoidalTable(embed_c // 4, img_size)
        self.transformer = AdaINTransformer(embed_c, depth, heads, feat_c, mlp_dim, dropout)

    @property
    def grid(self) -> int:
        """Patch tokens per side."""
        return self.img_size // PATCH_SIZE

    def pos_embed(self) -> Tensor:
        """(1, grid^2, embed_c): ``cat(pe_x[row], pe_y[col], pe_w[7], pe_h[7])`` on the img_size x img_size grid,
        bilinearly resized (``align_corners=False``) to the token grid."""
        s = self.img_size
        rows = self.pos_embed_x.rows(torch.arange(s, device=self.pos_embed_x.pe.device))
        cols = self.pos_embed_y.rows(torch.arange(s, device=self.pos_embed_y.pe.device))
        size_codes = torch.cat([self.pos_embed_w.rows(PATCH_SIZE - 1), self.pos_embed_h.rows(PATCH_SIZE - 1)])
        q = rows.shape[-1]
        table = torch.cat([rows[:, None].expand(s, s, q), cols[None].expand(s, s, q),
                           size_codes.expand(s, s, 2 * q)], -1)
        table = F.interpolate(table.permute(2, 0, 1)[None], size=(self.grid, self.grid), mode="bilinear",
                              align_corners=False)
        return table.flatten(2).transpose(1, 2)

    def box_pos_embed(self, boxes: Tensor) -> Tensor:
        """(B, num_box, embed_c): ``cat(pe_x[y_c], pe_y[x_c], pe_x[h], pe_y[w])`` with each value (centre or size,
        normalised) mapped to ``(value * (img_size - 1)).long()``; negative indices (padded boxes) wrap."""
        x1, y1, x2, y2 = boxes[..., 1:].unbind(-1)

        def index(value: Tensor) -> Tensor:
            return torch.remainder((value * (self.img_size - 1)).long(), self.img_size)

        return torch.cat([self.pos_embed_x.rows(index((y1 + y2) / 2)), self.pos_embed_y.rows(index((x1 + x2) / 2)),
                          self.pos_embed_x.rows(index(y2 - y1)), self.pos_embed_y.rows(index(x2 - x1))], -1)

    def tokens(self, features: Tensor, boxes: Tensor | None = None) -> Tensor:
        """The token sequence before the transformer (official ``patch_embed + pos_embed``, then ``add_box``):
        (B, grid^2 [+ num_box], embed_c)."""
        s = self.img_size
        if features.dim() != 4 or features.shape[-2:] != (s, s):
            raise ValueError(f"the aggregator takes {s}x{s} content features ({s * 4}x{s * 4} images with the "
                             f"official encoder); got {tuple(features.shape)}")
        tokens = self.patch_embed(features) + self.pos_embed().to(features.dtype)
        if boxes is None:
            return tokens
        b, num_box = boxes.shape[:2]
        box_tokens = self.box_embed(extract_box_features(features, boxes)).reshape(b, num_box, -1)
        return torch.cat([tokens, box_tokens + self.box_pos_embed(boxes).to(box_tokens.dtype)], 1)

    def forward(self, features: Tensor, boxes: Tensor | None = None, adain_params: Tensor | None = None,
                ) -> tuple[Tensor, Tensor | None]:
        """Aggregated patch tokens and box tokens (None without boxes); ``adain_params`` (B, P) the style MLP's
        output (None: the parameters assigned with :func:`assign_adain_params`)."""
        tokens = self.transformer(self.tokens(features, boxes), adain_params)
        n = self.grid**2
        return tokens[:, :n], (tokens[:, n:] if boxes is not None else None)


class _TokensToGrid(nn.Module):
    """(B, grid^2, C) row-major tokens -> (B, C, grid, grid), NCHW-contiguous.

    The transposed view would be channels-last, and so would every layer after it; zoo's instance norm keeps that
    layout, where its statistics are less accurate in float32 than those of the NCHW copy the official
    ``nn.InstanceNorm2d`` makes (which the parity tolerances, 10x the official float32 error, assume).
    """

    def forward(self, tokens: Tensor) -> Tensor:
        b, n, c = tokens.shape
        side = math.isqrt(n)
        return tokens.transpose(1, 2).reshape(b, c, side, side).contiguous()


class Decoder(nn.Module):
    """Official ``Decoder(img_size, patch_size=8, embed_C, feat_C, ngf, n_upsampling)``.

    Global branch (``inv_patch_embed``): tokens -> (B, embed_c, grid, grid) -> ConvTranspose2d(k 8, stride 8) to
    ``feat_C = ngf * 2**n_upsampling`` channels; box branch (``inv_patch_embed_box``): each box token as a 1x1 map ->
    the same transposed conv (its own weights). Then the CUT up-sampling trunk ``model``: per step blur up-sampling,
    3x3 conv, instance norm, ReLU; reflect pad 3, 7x7 conv, tanh.

    Shape:
        tokens (B, grid^2, embed_c) -> (B, output_nc, 8 * grid * 2**n_upsampling, same); box tokens
        (B, num_box, embed_c) -> (B * num_box, output_nc, 8 * 2**n_upsampling, same), image-major.
    """

    def __init__(self, embed_c: int = 1024, ngf: int = 64, n_upsampling: int = 2, output_nc: int = 3) -> None:
        super().__init__()
        feat_c = ngf * 2**n_upsampling
        self.inv_patch_embed = nn.Sequential(_TokensToGrid(), nn.Identity(),
                                             nn.ConvTranspose2d(embed_c, feat_c, PATCH_SIZE, stride=PATCH_SIZE))
        self.inv_patch_embed_box = nn.Sequential(nn.ConvTranspose2d(embed_c, feat_c, PATCH_SIZE, stride=PATCH_SIZE))
        norm = get_norm_layer("instance")
        layers: list[nn.Module] = []
        width = feat_c
        for _ in range(n_upsampling):
            layers += [Upsample(width), nn.Conv2d(width, width // 2, 3, padding=1), norm(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [ReflectionPad2d(3), Conv2dFewOutputs(width, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, tokens: Tensor, boxes: Tensor | None = None) -> Tensor:
        """Images from patch tokens, or (given ``boxes``, which only select the branch) box images from box tokens.
        Every box token is decoded, padded ones included, as officially."""
        if boxes is None:
            return self.model(self.inv_patch_embed(tokens))
        return self.model(self.inv_patch_embed_box(tokens.reshape(-1, tokens.shape[-1], 1, 1)))


class InstaFormerGenerator(nn.Module):
    """The five official generator networks (the official ``model_G``) as one module.

    Args:
        input_nc: image channels (both domains: the content encoder also encodes domain B for reconstruction).
        ngf: encoder/decoder base width (64).
        n_downsampling: encoder down-sampling steps (= decoder up-sampling steps; 2).
        img_size: side of the content feature map (image side / 2**n_downsampling; 88 for 352-px images).
        embed_c: token width (1024).
        depth, heads, mlp_dim: transformer depth (6), heads (4) and feed-forward width (4096).
        style_dim: style code length (8).
        adain_dim: hidden width of the style MLP (256).
        adain_params: width of the style MLP's output (default ``2 * embed_c``, the official one; a wider output is
            split over the AdaIN layers, see :func:`split_adain_params`).
        stem_channels: outputs of the first two convolutions of the aggregator's stems (default ``embed_c // 2``).

    Shape:
        images (B, input_nc, S, S) with S = ``image_size``, in [-1, 1]; style (B, style_dim, 1, 1).
    """

    def __init__(self, *, input_nc: int = 3, ngf: int = 64, n_downsampling: int = 2, img_size: int = 88,
                 embed_c: int = 1024, depth: int = 6, heads: int = 4, mlp_dim: int = 4096, style_dim: int = 8,
                 adain_dim: int = 256, adain_params: int | None = None, stem_channels: int | None = None) -> None:
        super().__init__()
        feat_c = ngf * 2**n_downsampling
        self.style_dim = style_dim
        self.image_size = img_size * 2**n_downsampling
        self.content_encoder = ContentEncoder(input_nc, ngf, n_downsampling)
        self.style_encoder = StyleEncoder(input_nc, ngf, style_dim, n_downsampling)
        self.transformer = TransformerAggregator(img_size, embed_c, feat_c, depth, heads, mlp_dim,
                                                 stem_channels=stem_channels)
        self.mlp_adain = MLP(style_dim, adain_params or 2 * embed_c, adain_dim, 3, norm="none", activ="relu")
        self.decoder = Decoder(embed_c, ngf, n_downsampling, input_nc)

    def aggregate(self, content: Tensor, style: Tensor, boxes: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Patch and box tokens of content features (B, 4 ngf, img_size, img_size) under style codes
        (B, style_dim, 1, 1)."""
        return self.transformer(content, boxes, self.mlp_adain(style))

    def forward(self, images: Tensor, style: Tensor, boxes: Tensor | None = None) -> Tensor:
        """Translate ``images`` with style codes ``style`` (with box tokens when ``boxes`` (B, num_box, 5) are
        given): (B, C, S, S) in [-1, 1] -> (B, C, S, S) in [-1, 1]."""
        content, _ = self.content_encoder(images)
        patch_tokens, _ = self.aggregate(content, style, boxes)
        return self.decoder(patch_tokens)


def compute_nce_loss(head: PatchSampleF, keys: Sequence[Tensor], queries: Sequence[Tensor], *, num_patches: int,
                     batch_size: int, nce_t: float = 0.07, patch_ids: Sequence[Tensor] | None = None) -> Tensor:
    """Official ``compute_NCE_loss`` (unweighted): per layer, the MLP head samples the same positions of keys and
    queries (``randperm(H*W)[:num_patches]``, drawn for the keys), and the mean PatchNCE (negatives from the same
    image, temperature ``nce_t``; keys detached after the head) is averaged over the layers.

    Args:
        head: the MLP head (:class:`~zoo.nets.cut.PatchSampleF`, one MLP per layer).
        keys: per layer (N, C_l, H_l, W_l) source features.
        queries: per layer the same for the translation.
        num_patches: positions per layer (at most H_l * W_l are taken).
        batch_size: N.
        nce_t: temperature.
        patch_ids: per layer (P,) positions instead of sampling them.

    Returns:
        0-d loss.
    """
    key_samples, ids = head(keys, num_patches, patch_ids)
    query_samples, _ = head(queries, num_patches, ids)
    total = 0.0
    for q, k in zip(query_samples, key_samples, strict=True):
        total = total + patch_nce_loss(q, k, batch_size=batch_size, nce_t=nce_t).mean()
    return total / len(keys)


def instance_nce_loss(head: PatchSampleF, keys: Tensor, queries: Tensor, boxes: Tensor, *, nce_t: float = 0.07,
                      patch_ids: Tensor | None = None) -> Tensor:
    """The official instance-level NCE (unweighted): :func:`compute_nce_loss` between the box features of the
    translation (queries) and of the source (keys) over the valid boxes only, each box one "image" of
    :data:`INSTANCE_PATCHES` patches; 0 (and no gradient to the head) when no box is valid.

    Args:
        head: the instance MLP head (one MLP).
        keys: (B * num_box, C, 8, 8) source box features (:func:`extract_box_features`).
        queries: the same for the translation.
        boxes: (B, num_box, 5) the boxes both come from.
        patch_ids: (64,) positions instead of sampling them.
    """
    valid = valid_boxes(boxes).reshape(-1)
    count = int(valid.sum())
    if count == 0:
        return queries.new_zeros((), dtype=torch.float32)
    return compute_nce_loss(head, [keys[valid]], [queries[valid]], num_patches=INSTANCE_PATCHES, batch_size=count,
                            nce_t=nce_t, patch_ids=None if patch_ids is None else [patch_ids])
