"""Checks on output paths, made before any expensive work: a bad ``--out`` is reported at
once (one line, exit 2), never after a fit or a warp has been computed.

- :func:`check_output_folder`: a folder to create or write into (not a file, under a folder
  this process may write).
- :func:`check_output_file`: a file to write (not a folder, its folder creatable/writable).
- :func:`check_image_output`: also a format SimpleITK writes for this kind of image *and*
  that keeps the grid (spacing, origin, direction): a tiny image with a rotated grid is
  written to a temporary folder with the same extension and read back.
- :func:`check_points_output`: also a point-file extension cidir writes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from cidir.errors import InputError, itk_message
from cidir.geometry.grid import Grid

GEOMETRY_FORMATS = ".nii.gz, .nii, .mha, .mhd or .nrrd"
PIXEL_KINDS = ("float", "label", "vector")


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """InputError unless ``path`` is (or can be created as) a folder this process may write."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{what} {p}: expected a folder, found a file")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise InputError(f"{what} {p}: cannot create the folder: {base} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"{what} {p}: cannot write into {base} (permission denied)")
    return p


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """InputError unless ``path`` names a file that can be written (its folder created)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {p}: expected a file name, found a folder")
    base = _nearest_existing(p.parent)
    if not base.is_dir():
        raise InputError(f"{what} {p}: cannot create its folder: {base} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"{what} {p}: cannot write into {base} (permission denied)")
    return p


def _probe_grid(ndim: int) -> Grid:
    """A small grid with anisotropic spacing, an off-zero origin and a rotated direction."""
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.eye(ndim)
    rotation[:2, :2] = [[c, -s], [s, c]]
    return Grid(size=(5, 4, 3)[:ndim], spacing=tuple(0.75 + 0.5 * i for i in range(ndim)),
                origin=tuple(3.0 - 7.0 * i for i in range(ndim)),
                direction=tuple(rotation.ravel()))


def _same_grid(image, grid: Grid) -> bool:
    """Whether a SimpleITK image read back has ``grid`` (within 1e-4 mm)."""
    if image.GetDimension() != grid.ndim:
        return False
    try:
        return Grid.from_sitk(image).same_as(grid, atol=1e-4)
    except ValueError:  # not a valid grid at all (e.g. a zero spacing)
        return False


def check_image_output(path: str | os.PathLike, what: str = "--out", ndim: int = 3,
                       kind: str = "float") -> Path:
    """InputError unless SimpleITK writes a ``kind`` image (``float``, ``label`` int32 or
    ``vector`` float32) of ``ndim`` dimensions to ``path``'s format and reads back its grid."""
    import SimpleITK as sitk

    p = check_output_file(path, what)
    if kind not in PIXEL_KINDS:
        raise ValueError(f"kind: expected one of {PIXEL_KINDS}, found {kind!r}")
    suffix = "".join(p.suffixes[-2:]) if p.suffixes else ""
    if not suffix:
        raise InputError(f"{what} {p}: expected a file extension naming an image format "
                         f"({GEOMETRY_FORMATS})")
    grid = _probe_grid(ndim)
    if kind == "vector":
        image = grid.to_sitk(np.ones(grid.shape + (ndim,), np.float32), vector=True)
    else:
        image = grid.to_sitk(np.ones(grid.shape, np.int32 if kind == "label" else np.float32))
    with tempfile.TemporaryDirectory(prefix="cidir-probe-") as folder:
        probe = str(Path(folder) / f"probe{suffix}")
        try:
            sitk.WriteImage(image, probe)
            back = sitk.ReadImage(probe)
        except RuntimeError as exc:
            reason = (itk_message(exc) or "no writer").replace(probe, p.name)
            raise InputError(f"{what} {p}: cannot write a {ndim}D {kind} image as {suffix} "
                             f"({reason}); use {GEOMETRY_FORMATS}") from None
    if not _same_grid(back, grid):
        raise InputError(f"{what} {p}: the {suffix} format does not keep the image's grid "
                         f"(spacing, origin, direction); use {GEOMETRY_FORMATS}")
    return p


def check_points_output(path: str | os.PathLike, what: str = "--out") -> Path:
    """InputError unless ``path`` is a writable point file of a format cidir writes."""
    from cidir.io.landmarks import guess_format

    p = check_output_file(path, what)
    guess_format(p)
    return p
