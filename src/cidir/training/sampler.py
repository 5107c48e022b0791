"""Drawing training points: voxel centres inside the fixed mask (every voxel without one)."""

from __future__ import annotations

import numpy as np
import torch

from cidir.errors import InputError
from cidir.geometry import Image


class PointSampler:
    """Holds the world positions (mm) and fixed intensities of the candidate voxels on the
    device, and draws batches of them with replacement from a seeded generator."""

    def __init__(self, fixed: Image, mask: Image | None, device: torch.device | str,
                 generator: torch.Generator) -> None:
        if mask is not None:
            if not mask.grid.same_as(fixed.grid, atol=1e-3):
                raise InputError(f"fixed mask {mask.source}: grid {mask.grid.describe()} differs "
                                 f"from the fixed image's {fixed.grid.describe()}")
            flat = np.flatnonzero(np.asarray(mask.array).reshape(-1))
            if flat.size == 0:
                raise InputError(f"fixed mask {mask.source}: expected some voxels inside, "
                                 "found an empty mask")
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
