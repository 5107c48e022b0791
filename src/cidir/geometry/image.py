"""An image: a numpy array on a :class:`~cidir.geometry.grid.Grid`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cidir.geometry.grid import Grid


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
    def from_sitk(cls, image, source: str = "") -> Image:
        """From a scalar ``SimpleITK.Image`` (array copied, geometry kept)."""
        import SimpleITK as sitk

        return cls(sitk.GetArrayFromImage(image), Grid.from_sitk(image), source)

    def to_sitk(self):
        """A ``SimpleITK.Image`` with this array and geometry."""
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        self.grid.apply_to_sitk(image)
        return image

    def with_array(self, array: np.ndarray) -> Image:
        """The same grid with other values."""
        return Image(array, self.grid, self.source)
