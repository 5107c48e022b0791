"""Drawing training points: voxel centres inside the fixed mask grown by a margin (mm), or
every voxel without a mask."""

from __future__ import annotations

import numpy as np
import torch

from cidir.errors import InputError
from cidir.geometry import Grid, Image


def candidate_voxels(grid: Grid, mask: np.ndarray, margin_mm: float) -> np.ndarray:
    """Flat indices (array order) of the voxels within ``margin_mm`` (physical distance, mm)
    of the mask. The margin lets the network see the edges that surround the organ (the
    chest wall around the lungs), which a mask cut at its boundary hides."""
    inside = np.asarray(mask).reshape(grid.shape) > 0
    if margin_mm > 0:
        from scipy.ndimage import distance_transform_edt

        distance = distance_transform_edt(~inside, sampling=grid.spacing_zyx)
        inside = distance <= margin_mm
    return np.flatnonzero(inside.reshape(-1))


class PointSampler:
    """Holds the world positions (mm) and fixed intensities of the candidate voxels on the
    device, and draws batches of them with replacement from a seeded generator.
    ``margin_mm`` grows the mask by that physical distance (0: the mask itself)."""

    def __init__(self, fixed: Image, mask: Image | None, device: torch.device | str,
                 generator: torch.Generator, margin_mm: float = 0.0) -> None:
        if mask is not None:
            if not mask.grid.same_as(fixed.grid, atol=1e-3):
                raise InputError(f"fixed mask {mask.source}: grid {mask.grid.describe()} differs "
                                 f"from the fixed image's {fixed.grid.describe()}")
            if not np.any(np.asarray(mask.array)):
                raise InputError(f"fixed mask {mask.source}: expected some voxels inside, "
                                 "found an empty mask")
            flat = candidate_voxels(fixed.grid, mask.array, margin_mm)
        else:
            flat = np.arange(fixed.grid.num_voxels)
        self.device = torch.device(device)
        self.generator = generator
        self.world = torch.as_tensor(fixed.grid.world_points(flat), dtype=torch.float32,
                                     device=self.device)
        values = np.asarray(fixed.array, dtype=np.float32).reshape(-1)[flat]
        self.values = torch.as_tensor(values, device=self.device)

    def __len__(self) -> int:
        return self.world.shape[0]

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n world points (n, D) float32 and the fixed intensities there (n,)."""
        idx = torch.randint(len(self), (n,), generator=self.generator, device=self.device)
        return self.world[idx], self.values[idx]
