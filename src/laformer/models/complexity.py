"""Parameter and MAC counts with ``torch.utils.flop_counter`` (1 MAC = 2 FLOPs)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula, sdpa_flop_count

_CPU_SDPA = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
if _CPU_SDPA not in flop_registry:
    # PyTorch counts the CUDA attention kernels but not the CPU one, which would make softmax look free.
    @register_flop_formula(_CPU_SDPA)
    def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int = 256, width: int = 256, channels: int | None = None) -> int:
    """Multiply-accumulates of one forward pass on a 1 x C x H x W input.

    The pass runs on a copy on the ``meta`` device: counting needs shapes only, so even quadratic
    softmax attention at 4K is counted in a moment and without memory. Autograd stays on so that large inputs
    take the network's plain path: the count is the architecture's, not that of the strip-wise inference path
    (which recomputes the q/k/v projections of each strip, see ``GlobalPerception.forward_in_strips``).
    """
    if channels is None:
        info = getattr(model, "info", None)  # a suite network's NetworkInfo
        channels = getattr(info, "in_channels", None) or getattr(model, "in_channels", 3)
    meta_model = copy.deepcopy(model).to("meta")
    x = torch.empty(1, channels, height, width, device="meta")
    with FlopCounterMode(display=False) as counter, torch.enable_grad():
        meta_model(x)
    return counter.get_total_flops() // 2
