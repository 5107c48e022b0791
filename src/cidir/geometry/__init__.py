"""Geometry: the grid (voxel ↔ world mm LPS ↔ network ↔ grid_sample frames), affine
matrices, images on grids, and the kinematics of maps (jets, Jacobian determinants)."""

from cidir.geometry.affine import apply_affine, homogeneous
from cidir.geometry.frames import Frame
from cidir.geometry.grid import Grid
from cidir.geometry.image import Image
from cidir.geometry.maps import GridMaps

__all__ = ["Frame", "Grid", "GridMaps", "Image", "apply_affine", "homogeneous"]
