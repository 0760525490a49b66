"""Devices and processes: the device a run uses, joining the ``torchrun`` process group,
synchronized BatchNorm on CPU (gloo) and CUDA, autocast, and averaging over ranks."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..config import ConfigError


# =============================================================================================
# Devices and processes
# =============================================================================================
@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this call created the process group (and destroys it at the end)

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` -> this process's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config field 'device' = {name!r} but CUDA is not available")
    return torch.device(f"cuda:{local_rank}" if name == "cuda" else name)


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group ``torchrun`` describes (env RANK / WORLD_SIZE), if any."""
    local = int(os.environ.get("LOCAL_RANK", 0))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local)
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or "RANK" not in os.environ:
        return DistInfo()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, owned=True)


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm with statistics over the global batch of all ranks, for the gloo backend
    (``torch.nn.SyncBatchNorm`` only runs on GPUs).

    Two differentiable all-reduces per layer: (sum, count) for the mean, then the summed squared
    deviations for the (biased) variance; autograd sends the gradients of the statistics back
    through the same all-reduces, which is what makes it equal to BatchNorm over the global batch.
    Outside training or without a process group it is plain BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        all_reduce = _AllReduceSum.apply
        dims = [0] + list(range(2, x.dim()))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        local_n = x.new_tensor([x.numel() / x.shape[1]])
        sums = all_reduce(torch.cat([x.sum(dims), local_n]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        xc = x - mean.view(shape)
        var = all_reduce((xc * xc).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / max(float(count) - 1, 1.0), m)
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm -> synchronized BatchNorm (torch's on CUDA, ``CPUSyncBatchNorm`` on CPU)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    out = model
    if isinstance(model, nn.modules.batchnorm._BatchNorm) and not isinstance(model, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(model.num_features, model.eps, model.momentum, model.affine,
                               model.track_running_stats)
        out.load_state_dict(model.state_dict())
        out.train(model.training)
    for name, child in model.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out


def _autocast(device: torch.device, amp: str):
    """bf16 / fp16 autocast on CUDA; a no-op on CPU or with ``amp="off"``."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)



def _mean_over_ranks(x: torch.Tensor, info: DistInfo) -> float:
    """The loss averaged over ranks (a collective, so every rank sees the same value)."""
    if info.world > 1:
        x = x.clone().float()
        dist.all_reduce(x)
        x /= info.world
    return float(x)
