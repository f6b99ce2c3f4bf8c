"""Shape-only reflection padding: same values and gradients as ``F.pad(mode="reflect")``, without keeping the input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.nets.padding import ReflectionPad2d, ReplicationPad2d, reflection_pad2d, replication_pad2d


def _saved_storages(fn, x: torch.Tensor) -> set[int]:
    """Data pointers of the storages autograd keeps while building ``fn(x)``."""
    saved: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.add(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return saved


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("padding", [1, (1, 2, 3, 0)])
def test_values_and_gradients_match_f_pad(memory_format, padding):
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64).contiguous(memory_format=memory_format).requires_grad_()
    pads = (padding,) * 4 if isinstance(padding, int) else padding
    out = reflection_pad2d(x, padding)
    expected = F.pad(x, pads, mode="reflect")
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    grad = torch.randn_like(out)
    grad_x = torch.autograd.grad(out, x, grad)[0]
    torch.testing.assert_close(grad_x, torch.autograd.grad(expected, x, grad)[0])  # the mirrored sums may round apart
    assert grad_x.is_contiguous(memory_format=memory_format)
    assert torch.autograd.gradcheck(lambda t: reflection_pad2d(t, padding), (x,))
    assert torch.autograd.gradgradcheck(lambda t: reflection_pad2d(t, padding), (x,))


def test_gradient_penalty_through_padded_convolution_matches():
    """Second-order gradients (a WGAN-GP through a pad + conv discriminator) equal those of ``F.pad``."""
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)

    def penalty_grad(pad):
        x_hat = x.clone().requires_grad_()
        (grad,) = torch.autograd.grad(F.conv2d(pad(x_hat), weight).square().sum(), x_hat, create_graph=True)
        return torch.autograd.grad(grad.square().sum(), weight)[0]

    torch.testing.assert_close(penalty_grad(lambda t: reflection_pad2d(t, 1)),
                               penalty_grad(lambda t: F.pad(t, (1, 1, 1, 1), mode="reflect")))


def test_input_is_not_kept_for_backward():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    h = x * 2  # an activation nothing else keeps, like a residual stream
    assert h.untyped_storage().data_ptr() in _saved_storages(lambda t: F.pad(t, (1, 1, 1, 1), mode="reflect"), h)
    assert h.untyped_storage().data_ptr() not in _saved_storages(lambda t: reflection_pad2d(t, 1), h)


def test_module_is_a_drop_in_replacement():
    module = ReflectionPad2d((1, 2, 0, 1))
    assert isinstance(module, nn.ReflectionPad2d) and module.padding == (1, 2, 0, 1)
    assert module.state_dict() == {}
    x = torch.randn(1, 2, 4, 5)
    torch.testing.assert_close(module(x), nn.ReflectionPad2d((1, 2, 0, 1))(x), rtol=0, atol=0)
    assert reflection_pad2d(x[0], 1).shape == (2, 6, 7)  # unbatched input
    with torch.no_grad():
        assert module(x.requires_grad_()).grad_fn is None
    with pytest.raises(ValueError, match="padding"):
        reflection_pad2d(x, (1, 2))


def test_networks_use_it():
    """The generators and discriminators with reflection padding build zoo's pad (an official state dict loads
    unchanged: the pad has no state)."""
    from zoo.nets.lomit import Generator
    from zoo.nets.resnet_generator import ResnetGenerator

    for net in (Generator(conv_dim=8, mlp_dim=16), ResnetGenerator(ngf=8, n_blocks=2)):
        pads = [m for m in net.modules() if isinstance(m, nn.ReflectionPad2d)]
        assert pads and all(isinstance(m, ReflectionPad2d) for m in pads)


def test_mixed_precision_backward():
    """Under bfloat16 autocast a bfloat16 activation padded for a convolution receives a float32 gradient; its own
    gradient keeps its dtype and equals F.pad's."""
    conv = nn.Conv2d(4, 3, 7)

    def input_grad(pad):
        x = torch.linspace(-1, 1, 256).reshape(1, 4, 8, 8).to(torch.bfloat16).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.tanh(conv(pad(x)))
        out.float().sum().backward()
        return x.grad

    grad = input_grad(lambda t: reflection_pad2d(t, 3))
    assert grad.dtype == torch.bfloat16
    torch.testing.assert_close(grad, input_grad(lambda t: F.pad(t, (3, 3, 3, 3), mode="reflect")), rtol=0, atol=0)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_replication_padding_trains_under_inductor_with_the_values_and_gradients_of_f_pad(memory_format):
    """ATen's replicate padding fails in inductor's first backward (torch 2.14, CPU); the compiled path indexes."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3).to(memory_format=memory_format)
    x = torch.randn(2, 3, 6, 7).to(memory_format=memory_format)
    padding = (1, 2, 2, 1)

    def run(pad) -> tuple[torch.Tensor, ...]:
        conv.zero_grad()
        leaf = x.clone().requires_grad_()
        out = conv(pad(leaf))
        out.square().sum().backward()
        return out.detach(), leaf.grad, conv.weight.grad.clone()

    expected = run(lambda t: F.pad(t, padding, mode="replicate"))
    torch._dynamo.reset()
    compiled = torch.compile(lambda t: replication_pad2d(t, padding), backend="inductor")
    for got, want in zip(run(compiled), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert ReplicationPad2d(padding)(x).equal(F.pad(x, padding, mode="replicate"))  # eager: ATen's kernel
