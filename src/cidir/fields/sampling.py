"""Sampling images at world points on the device: linear for intensities, nearest for labels.

Points are world mm (LPS), tensors (B, D) in (x, y[, z]) order. As in ITK's resampling, a
point is inside when its continuous voxel index lies in [-0.5, size - 0.5) on every axis
(border voxels extend half a voxel); outside it reads 0, ITK's default pixel value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cidir.geometry import Image


class _GridSampler:
    def __init__(self, image: Image, device: torch.device | str, dtype: torch.dtype) -> None:
        self.grid = image.grid
        self.device = torch.device(device)
        self.data = torch.as_tensor(image.array, dtype=dtype).to(self.device)
        m = torch.as_tensor(self.grid.world_to_voxel_matrix, dtype=torch.float64)
        d = self.grid.ndim
        self._rotation = m[:d, :d].T.to(torch.float32).to(self.device)
        self._offset = m[:d, d].to(torch.float32).to(self.device)
        self._size = torch.as_tensor(self.grid.size, dtype=torch.float32, device=self.device)

    def to_voxel(self, world: torch.Tensor) -> torch.Tensor:
        return world @ self._rotation + self._offset

    def inside(self, voxel: torch.Tensor) -> torch.Tensor:
        return ((voxel >= -0.5) & (voxel < self._size - 0.5)).all(dim=-1)


class ImageSampler(_GridSampler):
    """Linear interpolation of a scalar image, differentiable with respect to the points."""

    def __init__(self, image: Image, device: torch.device | str = "cpu") -> None:
        super().__init__(image, device, torch.float32)
        self._volume = self.data[None, None]  # (1, 1, [Z,] Y, X)

    def __call__(self, world: torch.Tensor) -> torch.Tensor:
        voxel = self.to_voxel(world)
        denom = (self._size - 1).clamp_min(1.0)
        normalized = 2.0 * voxel / denom - 1.0  # align_corners=True: -1 ↔ voxel 0
        shape = (1,) * (self.grid.ndim - 1) + (1, -1, self.grid.ndim)
        values = F.grid_sample(self._volume, normalized.view(*shape), mode="bilinear",
                               padding_mode="border", align_corners=True).reshape(-1)
        return values * self.inside(voxel).to(values.dtype)


class LabelSampler(_GridSampler):
    """Nearest-neighbour label lookup (rounding half up, as ITK), 0 outside the image."""

    def __init__(self, labels: Image, device: torch.device | str = "cpu") -> None:
        super().__init__(labels, device, torch.int64)
        self._flat = self.data.reshape(-1)
        strides = [1]
        for s in self.grid.size[:-1]:
            strides.append(strides[-1] * s)
        self._strides = torch.as_tensor(strides, dtype=torch.int64, device=self.device)

    def __call__(self, world: torch.Tensor) -> torch.Tensor:
        voxel = self.to_voxel(world)
        inside = self.inside(voxel)
        index = torch.floor(voxel + 0.5).clamp_min(0).to(torch.int64)
        index = torch.minimum(index, (self._size - 1).to(torch.int64))
        values = self._flat[(index * self._strides).sum(dim=-1)]
        return torch.where(inside, values, torch.zeros_like(values))
