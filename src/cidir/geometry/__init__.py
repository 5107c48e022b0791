"""Geometry: the grid (voxel ↔ world mm LPS ↔ network frames) and images on grids."""

from cidir.geometry.grid import Frame, Grid
from cidir.geometry.image import Image

__all__ = ["Frame", "Grid", "Image"]
