"""Sampling images at world points on the device: linear for intensities, nearest for labels
(and for intensities on request).

Points are world mm (LPS), tensors (B, D) in (x, y[, z]) order. As in ITK's resampling, a
point is inside when its continuous voxel index lies in [-0.5, size - 0.5) on every axis
(border voxels extend half a voxel); outside it reads 0, ITK's default pixel value. The
conversions world → voxel → ``grid_sample`` cube are the image grid's
(:meth:`cidir.geometry.Grid.maps`, float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cidir.geometry import Image
from cidir.geometry.frames import Voxel, World


class _GridSampler:
    def __init__(self, image: Image, device: torch.device | str, dtype: torch.dtype) -> None:
        self.grid = image.grid
        self.device = torch.device(device)
        self.data = torch.as_tensor(image.array, dtype=dtype).to(self.device)
        self.maps = self.grid.maps(self.device, torch.float32)

    def to_voxel(self, world: World[torch.Tensor]) -> Voxel[torch.Tensor]:
        return self.maps.world_to_voxel(world)

    def inside(self, voxel: Voxel[torch.Tensor]) -> torch.Tensor:
        return self.maps.inside(voxel)


class ImageSampler(_GridSampler):
    """Linear interpolation of a scalar image, differentiable with respect to the points."""

    def __init__(self, image: Image, device: torch.device | str = "cpu") -> None:
        super().__init__(image, device, torch.float32)
        self._volume = self.data[None, None]  # (1, 1, [Z,] Y, X)

    def __call__(self, world: World[torch.Tensor]) -> torch.Tensor:
        """Intensities (B,) at world points (B, D) mm."""
        voxel = self.to_voxel(world)
        cube = self.maps.voxel_to_cube(voxel)
        shape = (1,) * (self.grid.ndim - 1) + (1, -1, self.grid.ndim)
        values = F.grid_sample(self._volume, cube.view(*shape), mode="bilinear",
                               padding_mode="border", align_corners=True).reshape(-1)
        return values * self.inside(voxel).to(values.dtype)


class NearestSampler(_GridSampler):
    """Nearest-neighbour lookup (rounding half up, as ITK), 0 outside the image; values in
    ``dtype`` (float32 for an intensity image)."""

    def __init__(self, image: Image, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(image, device, dtype)
        self._flat = self.data.reshape(-1)
        strides = [1]
        for s in self.grid.size[:-1]:
            strides.append(strides[-1] * s)
        self._strides = torch.as_tensor(strides, dtype=torch.int64, device=self.device)

    def __call__(self, world: World[torch.Tensor]) -> torch.Tensor:
        """Values (B,) at world points (B, D) mm."""
        voxel = self.to_voxel(world)
        inside = self.inside(voxel)
        index = torch.floor(voxel + 0.5).clamp_min(0).to(torch.int64)
        index = torch.minimum(index, (self.maps.size - 1).to(torch.int64))
        values = self._flat[(index * self._strides).sum(dim=-1)]
        return torch.where(inside, values, torch.zeros_like(values))


class LabelSampler(NearestSampler):
    """Nearest-neighbour label lookup (rounding half up, as ITK), int64, 0 outside the image."""

    def __init__(self, labels: Image, device: torch.device | str = "cpu") -> None:
        super().__init__(labels, device, torch.int64)
