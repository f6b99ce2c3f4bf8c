"""Channels-last fast paths: same values and gradients as the NCHW layers, and the output stays channels-last."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.nets import drit
from zoo.nets.norm import ChannelsLastInstanceNorm2d, get_norm_layer

CL = torch.channels_last


def _values_and_grads(module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.detach().requires_grad_()
    out = module(x)
    out.backward(grad)
    params = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    return (out, x.grad, *params)


def _assert_channels_last_matches(reference: nn.Module, fast: nn.Module, x: torch.Tensor, grad: torch.Tensor, *,
                                  rtol: float, atol: float) -> int:
    """``fast`` on channels-last ``x`` returns a channels-last output with the values and gradients (input and
    parameters) of ``reference`` on NCHW ``x``; returns how many tensors were compared."""
    expected = _values_and_grads(reference, x, grad)
    got = _values_and_grads(fast, x.contiguous(memory_format=CL), grad.contiguous(memory_format=CL))
    assert got[0].is_contiguous(memory_format=CL)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
    return len(got)


@pytest.mark.parametrize("affine", [False, True])
def test_channels_last_instance_norm_matches_instance_norm(affine: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 7, 6, generator=g) * 3 + 1
    grad = torch.randn(3, 5, 7, 6, generator=g)
    reference = nn.InstanceNorm2d(5, affine=affine)
    if affine:
        with torch.no_grad():
            reference.weight.uniform_(0.5, 1.5, generator=g)
            reference.bias.uniform_(-1, 1, generator=g)
    fast = ChannelsLastInstanceNorm2d(5, affine=affine)
    fast.load_state_dict(reference.state_dict())
    compared = _assert_channels_last_matches(reference, fast, x, grad, rtol=1e-4, atol=1e-5)
    assert compared == (4 if affine else 2)


def test_instance_norm_layers_of_the_pix2pix_family_keep_channels_last() -> None:
    norm = get_norm_layer("instance")(4)
    assert type(norm) is ChannelsLastInstanceNorm2d
    assert not norm.affine and not norm.track_running_stats


def test_channels_last_instance_norm_moves_running_statistics_as_torch() -> None:
    g = torch.Generator().manual_seed(2)
    reference = nn.InstanceNorm2d(5, affine=True, track_running_stats=True, momentum=0.3)
    fast = ChannelsLastInstanceNorm2d(5, affine=True, track_running_stats=True, momentum=0.3)
    fast.load_state_dict(reference.state_dict())
    for _ in range(3):  # training: per-image statistics, running statistics moved by the batch average
        x = torch.randn(4, 5, 6, 7, generator=g) * 2 + 1
        grad = torch.randn(4, 5, 6, 7, generator=g)
        _assert_channels_last_matches(reference, fast, x, grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.running_mean, reference.running_mean)
    torch.testing.assert_close(fast.running_var, reference.running_var)
    assert not torch.equal(fast.running_var, torch.ones(5))
    reference.eval()
    fast.eval()  # evaluation: the running statistics
    x = torch.randn(2, 5, 6, 7, generator=g)
    out = fast(x.contiguous(memory_format=CL))
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, reference(x), rtol=1e-5, atol=1e-6)


def test_drit_layer_norm_channels_last_matches_nchw() -> None:
    g = torch.Generator().manual_seed(1)
    norm = drit.LayerNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5, generator=g)
        norm.bias.uniform_(-1, 1, generator=g)
    x = torch.randn(2, 6, 5, 4, generator=g) * 2
    grad = torch.randn(2, 6, 5, 4, generator=g)
    assert _assert_channels_last_matches(norm, norm, x, grad, rtol=1e-5, atol=1e-6) == 4


@pytest.mark.parametrize("generator_class", [drit.G_concat, drit.G])
def test_drit_generator_stays_channels_last(generator_class) -> None:
    torch.manual_seed(0)
    gen = generator_class(3, 3, nz=8, ch=8).to(memory_format=CL)
    content = torch.randn(2, 32, 6, 6).contiguous(memory_format=CL)
    z = torch.randn(2, 8)
    out = gen.forward_a(content, z)
    assert out.is_contiguous(memory_format=CL)
    # every convolution receives a channels-last tensor: no hidden conversion to NCHW
    convs_in_nchw = []
    hooks = [m.register_forward_pre_hook(lambda m, i: convs_in_nchw.append(type(m).__name__) if not i[0]
                                         .is_contiguous(memory_format=CL) else None)
             for m in gen.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    gen.forward_a(content, z)
    for hook in hooks:
        hook.remove()
    assert convs_in_nchw == []
    torch.testing.assert_close(out, gen.to(memory_format=torch.contiguous_format).forward_a(content.contiguous(), z),
                               rtol=1e-4, atol=1e-5)


def test_inference_net_same_output_and_fresh_weights() -> None:
    from zoo.methods._common import inference_net

    torch.manual_seed(0)
    owner = nn.Module()
    net = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 4, 3), ChannelsLastInstanceNorm2d(4),
                        nn.Conv2d(4, 4, 1, groups=4), nn.Tanh())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = net(x)
        wrapped = inference_net(owner, net, CL)
        out = wrapped(x)
        assert out.is_contiguous()
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
        # every convolution reads a channels-last input (the depthwise one after the instance norm too)
        seen = []
        hooks = [m.register_forward_pre_hook(lambda m, i: seen.append(i[0].is_contiguous(memory_format=CL)))
                 for m in net.modules() if isinstance(m, nn.Conv2d)]
        wrapped(x)
        for hook in hooks:
            hook.remove()
        assert seen == [True, True]
        net[1].weight.mul_(2)  # an in-place update invalidates the cached copies
        torch.testing.assert_close(inference_net(owner, net, CL)(x), net(x), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(net(x), expected)
        net.to(memory_format=CL)  # weights already channels-last: no copies
        assert inference_net(owner, net, CL).state is None
        nchw = inference_net(owner, net, torch.contiguous_format)  # NCHW copies of channels-last weights
        assert all(t.is_contiguous() for t in nchw.state.values())
        torch.testing.assert_close(nchw(x), net(x), rtol=1e-5, atol=1e-6)


def test_vsait_generator_keeps_channels_last_and_matches_nchw() -> None:
    from zoo.nets.vsait import VSAITGenerator

    torch.manual_seed(0)
    net = VSAITGenerator(n_channels=8, res_blocks=2).double()
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(isinstance(m, ChannelsLastInstanceNorm2d) for m in norms)
    x = torch.rand(2, 3, 16, 20, dtype=torch.float64) * 2 - 1
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.is_contiguous(memory_format=CL))) for m in norms]
    with torch.no_grad():
        expected = net(x)
        seen.clear()
        got = net.to(memory_format=CL)(x.contiguous(memory_format=CL))
    for h in hooks:
        h.remove()
    assert seen and all(seen)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("input_layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("grad_layout", ["nchw", "channels_last"])
def test_instance_norm_gradient_is_exact_for_any_layout(batch: int, input_layout: str, grad_layout: str) -> None:
    """zoo's instance norm gets the true input gradient whatever the layouts of its input and of the incoming
    gradient (PatchNCE's patch gathering sends channels-last gradients back; torch's own NCHW instance norm
    mishandles them for a single image, which ``reproduce_single_image_gradient_defect`` brings back)."""
    torch.manual_seed(0)
    x = torch.randn(batch, 6, 7, 5, dtype=torch.float64)
    grad = torch.randn(batch, 6, 7, 5, dtype=torch.float64)
    reference_input = x.clone().requires_grad_(True)
    expected = torch.autograd.grad(torch.nn.functional.instance_norm(reference_input), reference_input, grad)[0]
    layout = torch.channels_last if input_layout == "channels_last" else torch.contiguous_format
    ours_input = x.contiguous(memory_format=layout).requires_grad_(True)
    incoming = grad.contiguous(memory_format=torch.channels_last) if grad_layout == "channels_last" else grad
    got = torch.autograd.grad(ChannelsLastInstanceNorm2d(6)(ours_input), ours_input, incoming)[0]
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)
