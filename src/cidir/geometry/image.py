"""An image: a numpy array on a :class:`~cidir.geometry.grid.Grid`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cidir.geometry.grid import Grid

if TYPE_CHECKING:
    import SimpleITK as sitk


@dataclass(frozen=True, eq=False)
class Image:
    """A scalar image or label map.

    Attributes:
        array: values, shape ``grid.shape`` i.e. (z, y, x) in 3D, (y, x) in 2D.
        grid: where the voxels are in world space (mm, LPS).
        source: where it came from (a path), used in error messages.
    """

    array: np.ndarray
    grid: Grid
    source: str = ""

    def __post_init__(self) -> None:
        if tuple(self.array.shape) != self.grid.shape:
            raise ValueError(
                f"{self.source or 'image'}: array shape {self.array.shape} does not match "
                f"grid shape (z, y, x) {self.grid.shape}"
            )

    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @classmethod
    def from_sitk(cls, image: sitk.Image, source: str = "") -> Image:
        """From a scalar ``SimpleITK.Image`` (array copied, geometry kept)."""
        import SimpleITK as sitk

        return cls(sitk.GetArrayFromImage(image), Grid.from_sitk(image), source)

    def to_sitk(self) -> sitk.Image:
        """A ``SimpleITK.Image`` with this array and geometry."""
        return self.grid.to_sitk(self.array)

    def with_array(self, array: np.ndarray) -> Image:
        """The same grid with other values."""
        return Image(array, self.grid, self.source)
