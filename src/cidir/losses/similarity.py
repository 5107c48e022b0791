"""Image similarity over a batch of sampled points (pure functions).

Inputs are intensities (G, N): G groups (one per α drawn in the iteration) of N points.
The result is one loss per group (G,); lower is better.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: (fixed (G, N), warped (G, N)) → loss per group (G,)
Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def negative_ncc(fixed: torch.Tensor, warped: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """−NCC over the points of each group (global, not windowed; IDIR's choice). In [−1, 1]."""
    f = fixed - fixed.mean(dim=-1, keepdim=True)
    w = warped - warped.mean(dim=-1, keepdim=True)
    cov = (f * w).mean(dim=-1)
    std = torch.sqrt((f * f).mean(dim=-1) * (w * w).mean(dim=-1) + eps)
    return -cov / std


#: Parzen-window MI: histogram bins per image, and the kernel width in bin widths
MI_BINS = 32  # the default of objective.mi_bins
MI_KERNEL_WIDTH = 0.5


def _unit_range(values: torch.Tensor) -> torch.Tensor:
    """Each group's intensities mapped to [0, 1] by its own min and max (not differentiated:
    the bins follow the sample, the gradient flows through the values only)."""
    lo = values.detach().amin(dim=-1, keepdim=True)
    hi = values.detach().amax(dim=-1, keepdim=True)
    return (values - lo) / (hi - lo).clamp_min(1e-12)


def _parzen_weights(values: torch.Tensor, bins: int) -> torch.Tensor:
    """(G, N) intensities in [0, 1] → (G, N, bins) Gaussian bin memberships summing to 1."""
    centers = torch.linspace(0.0, 1.0, bins, dtype=values.dtype, device=values.device)
    sigma = MI_KERNEL_WIDTH / (bins - 1)
    logits = -0.5 * ((values.unsqueeze(-1) - centers) / sigma) ** 2
    return torch.softmax(logits, dim=-1)


def negative_mi(fixed: torch.Tensor, warped: torch.Tensor, bins: int = MI_BINS,
                eps: float = 1e-10) -> torch.Tensor:
    """−mutual information (nats) of each group's joint intensity histogram, a differentiable
    Parzen-window estimate (Mattes et al. 2003; Gaussian kernels of half a bin width over
    ``bins`` bins spanning each group's own intensity range). Needs no relation between the
    two images' intensities beyond a statistical one: MR ↔ CT, T1 ↔ T2. In [−log(bins), 0]."""
    wf = _parzen_weights(_unit_range(fixed), bins)  # (G, N, B)
    ww = _parzen_weights(_unit_range(warped), bins)
    joint = wf.transpose(1, 2) @ ww / fixed.shape[-1]  # (G, B, B), sums to 1
    pf = joint.sum(dim=2, keepdim=True)
    pw = joint.sum(dim=1, keepdim=True)
    mi = (joint * (torch.log(joint + eps) - torch.log(pf + eps) - torch.log(pw + eps)))
    return -mi.sum(dim=(1, 2))


def mse(fixed: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """Mean squared intensity difference of each group (intensity units squared)."""
    return ((fixed - warped) ** 2).mean(dim=-1)


#: The similarity registry: ``objective.similarity`` names one of these (the config's choices
#: are built from it).
SIMILARITIES: dict[str, Similarity] = {"ncc": negative_ncc, "mse": mse, "mi": negative_mi}
