"""The layers of K models at once: what `CoordinateMLP.forward_stacked` (and so every training step) is made of.

Each function takes tensors with a leading dimension of K, one slice per model: inputs
(K, B, in), Linear weights in PyTorch's layout stacked (K, out, in), biases (K, out).

- `linear`: one `baddbmm` for the K products, the bias as its beta term (HFTA's fused
  layer), optionally followed in place by an activation whose gradient is a function of its
  output (`Activation.inplace` and `Activation.grad_from_output`: ReLU, leaky ReLU, tanh,
  sigmoid). Its backward is written by hand: the activation's gradient in one pass, each
  product in the layout that is fastest for its shape (a 64 -> 2 layer's weight gradient as
  the transpose of x^T g), no input gradient for the first layer. bf16 (`compute`): the
  products run in bfloat16 and the layer's output stays bfloat16, so the next bf16 layer
  reads it as it is; weights, their gradients and the Adam state stay float32.
- `batchnorm`: BatchNorm1d in training mode for each model's batch (torch's kernel over the
  K models' channels side by side), updating each model's running statistics in place.
- `per_model`: any other module (an encoding, a custom layer) through `torch.vmap` of its own
  forward over its stacked tensors (PyTorch's model-ensembling recipe).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

# Below this many columns a product's weight gradient is faster as (x^T g)^T than as g^T x (measured on 2-core CPUs:
# 4-6x for a 64 -> 2 layer; the opposite for 2 -> 64).
_NARROW = 16


class _Linear(torch.autograd.Function):
    """y = act(x W^T + b) for K models: x (K, B, in), W (K, out, in), b (K, out) -> (K, B, out)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, inplace: Callable[[torch.Tensor], torch.Tensor] | None,
                grad_from_output: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None, compute: torch.dtype) -> torch.Tensor:
        x_c, w_c = x.to(compute), weight.to(compute)
        out = torch.baddbmm(bias.to(compute).unsqueeze(1), x_c, w_c.mT)
        if inplace is not None:
            out = inplace(out)
        ctx.save_for_backward(x_c, w_c, out if grad_from_output is not None else None)
        ctx.grad_from_output = grad_from_output
        ctx.input_dtype = x.dtype
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w, out = ctx.saved_tensors
        grad = grad.to(w.dtype)
        if ctx.grad_from_output is not None:
            grad = ctx.grad_from_output(grad, out)
        if w.shape[2] < _NARROW:  # few inputs (the 2 -> 64 layer): x^T g, transposed, is the fast layout
            grad_w = torch.bmm(x.mT, grad).mT
        else:
            grad_w = torch.bmm(grad.mT, x)
        grad_b = grad.sum(1)
        grad_x = torch.bmm(grad, w).to(ctx.input_dtype) if ctx.needs_input_grad[0] else None
        return grad_x, grad_w.float(), grad_b.float(), None, None, None


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activation: Any = None,
           compute: torch.dtype = torch.float32) -> torch.Tensor:
    """K Linear layers (and `activation`, an `activations.Activation` with an in-place form, fused after them)."""
    inplace = grad_from_output = None
    if activation is not None:
        inplace, grad_from_output = activation.inplace, activation.grad_from_output
    return _Linear.apply(x, weight, bias, inplace, grad_from_output, compute)


def batchnorm(x: torch.Tensor, module: nn.BatchNorm1d, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """`module` (training mode) for K models: x (K, B, C); `tensors`: its weight, bias and running statistics stacked.

    The K models' channels side by side are one BatchNorm of K * C channels over the batch:
    torch's own kernel, so a model alone computes exactly what `nn.BatchNorm1d` does. Each
    model's running statistics move in place, in its slice, and its batch count goes up by one.
    """
    k, b, c = x.shape
    tensors["num_batches_tracked"].add_(1)
    momentum = module.momentum
    if momentum is None:  # a cumulative average, as nn.BatchNorm1d keeps it
        momentum = 1.0 / float(tensors["num_batches_tracked"].reshape(-1)[0])
    side_by_side = x.float().transpose(0, 1).reshape(b, k * c)
    out = F.batch_norm(side_by_side, tensors["running_mean"].view(-1), tensors["running_var"].view(-1),
                       tensors["weight"].reshape(-1), tensors["bias"].reshape(-1), True, momentum, module.eps)
    return out.view(b, k, c).transpose(0, 1)


def per_model(module: nn.Module, tensors: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`module`'s own forward for each of K models: its parameters and buffers stacked in `tensors`, x (K, B, ...)."""
    if not tensors:  # nothing of its own (identity): one call for all
        k, b = x.shape[:2]
        out = module(x.reshape(k * b, *x.shape[2:]))
        return out.reshape(k, b, *out.shape[1:])
    return torch.vmap(lambda t, v: functional_call(module, t, (v,)))(tensors, x)
