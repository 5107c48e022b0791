"""DIR-LAB 4DCT lung benchmark (Castillo et al., 2009/2010): images and landmarks.

Protocol: fixed = T00 (maximum inhale), moving = T50 (maximum exhale); 300 landmark pairs
per case. Images are headerless little-endian int16, x fastest (array ``(z, y, x)``),
stored value = HU + 1024. Landmark files hold 1-based voxel x y z.

Frames: the grid of a case has origin (0, 0, 0) mm, identity direction and the case
spacing, so world (mm) = spacing * (voxel index, 0-based). **Nothing is flipped**: the
images are read in the order stored and the landmarks in the same voxel frame, so images
and landmarks stay consistent (loaders that flip the slice axis must flip both; TRE does
not change either way).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.geometry.grid import Grid
from cidir.geometry.image import Image
from cidir.io.atomic import write_bytes
from cidir.io.landmarks import read_points

HU_OFFSET = 1024  # stored value = HU + 1024

# case -> (size (x, y, z) voxels, spacing (x, y, z) mm)
CASES: dict[int, tuple[tuple[int, int, int], tuple[float, float, float]]] = {
    1: ((256, 256, 94), (0.97, 0.97, 2.5)),
    2: ((256, 256, 112), (1.16, 1.16, 2.5)),
    3: ((256, 256, 104), (1.15, 1.15, 2.5)),
    4: ((256, 256, 99), (1.13, 1.13, 2.5)),
    5: ((256, 256, 106), (1.10, 1.10, 2.5)),
    6: ((512, 512, 128), (0.97, 0.97, 2.5)),
    7: ((512, 512, 136), (0.97, 0.97, 2.5)),
    8: ((512, 512, 128), (0.97, 0.97, 2.5)),
    9: ((512, 512, 128), (0.97, 0.97, 2.5)),
    10: ((512, 512, 120), (0.97, 0.97, 2.5)),
}

# Published mean distance (mm) between T00 and T50 landmarks without registration.
IDENTITY_TRE_MM = {1: 3.89, 2: 4.34, 3: 6.94, 4: 9.83, 5: 7.48,
                   6: 10.89, 7: 11.03, 8: 14.99, 9: 7.92, 10: 7.30}

PHASES = ("T00", "T50")
# case1_T00_s.img, case2_T00-ssm.img, case6_T00.img, Case1_T00.img, ...
_IMAGE_RE = re.compile(r"^case0*(?P<case>\d+)[_\- ]*t(?P<phase>\d\d)(?!\d)[^.]*\.img$", re.I)
# Case1_300_T00_xyz.txt, case1_300_T00_xyz.txt, case6_dirLab300_T00_xyz.txt, ...
_LANDMARK_RE = re.compile(
    r"^case0*(?P<case>\d+)[_\- ]*(?:dirlab)?300[_\- ]*t(?P<phase>\d\d)[_\- ]*xyz\.txt$", re.I
)


def _check_case(case: int) -> int:
    if case not in CASES:
        raise InputError(f"DIR-LAB case: expected 1 to 10, found {case!r}")
    return int(case)


def _check_phase(phase: str) -> str:
    p = str(phase).upper()
    if not re.fullmatch(r"T\d\d", p):
        raise InputError(f"DIR-LAB phase: expected e.g. 'T00' or 'T50', found {phase!r}")
    return p


def case_grid(case: int) -> Grid:
    """The grid of a case: its size, its spacing (mm), origin (0, 0, 0), identity direction."""
    size, spacing = CASES[_check_case(case)]
    return Grid(size=size, spacing=spacing, origin=(0.0, 0.0, 0.0),
                direction=tuple(np.eye(3).ravel()))


def find_case_file(root: str | os.PathLike, case: int, phase: str, kind: str = "image"
                   ) -> Path:
    """Find a case's T00/T50 image (``kind="image"``) or landmark file (``"landmarks"``).

    Searches ``root`` recursively, case-insensitively, tolerating the published name
    variants (``case1_T00_s.img``, ``case2_T00-ssm.img``, ``Case6_T00.img``;
    ``Case1_300_T00_xyz.txt``, ``case6_dirLab300_T00_xyz.txt``, in any subfolder such
    as ``extremePhases``). case1 never matches case10.
    """
    case, phase = _check_case(case), _check_phase(phase)
    if kind not in ("image", "landmarks"):
        raise ValueError(f"kind: expected 'image' or 'landmarks', found {kind!r}")
    pattern = _IMAGE_RE if kind == "image" else _LANDMARK_RE
    looked_for = (f"case{case}_{phase}*.img" if kind == "image"
                  else f"Case{case}_300_{phase}_xyz.txt")
    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"DIR-LAB folder {root}: expected a folder holding {looked_for}, found no such folder"
        )
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            m = pattern.match(name)
            if m and int(m["case"]) == case and f"T{m['phase']}" == phase:
                found.append(Path(dirpath) / name)
    if not found:
        raise InputError(
            f"DIR-LAB folder {root}: expected a {kind} file like {looked_for} (any case, "
            f"any subfolder, name variants allowed), found none"
        )
    if len(found) > 1:
        names = ", ".join(str(f) for f in sorted(found))
        raise InputError(
            f"DIR-LAB folder {root}: expected one {kind} file for case {case} {phase}, "
            f"found {len(found)}: {names}"
        )
    return found[0]


def read_dirlab_image(path: str | os.PathLike, case: int) -> Image:
    """Read a DIR-LAB ``.img`` as float32 HU (z, y, x) on :func:`case_grid` (no flips)."""
    grid = case_grid(case)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"DIR-LAB image {path}: expected a file, found no such file")
    expected = grid.num_voxels * 2
    found = path.stat().st_size
    if found != expected:
        raise InputError(
            f"DIR-LAB image {path}: expected {expected} bytes (int16, {grid.size} voxels of "
            f"case {case}), found {found} bytes"
        )
    stored = np.fromfile(path, dtype="<i2").reshape(grid.shape)
    return Image(stored.astype(np.float32) - HU_OFFSET, grid, str(path))


def write_dirlab_image(image_hu: np.ndarray, path: str | os.PathLike) -> None:
    """Write a (z, y, x) HU array in the DIR-LAB layout (int16 LE, HU + 1024), atomically."""
    stored = np.round(np.asarray(image_hu, dtype=np.float64)) + HU_OFFSET
    info = np.iinfo(np.int16)
    if stored.size and (stored.min() < info.min or stored.max() > info.max):
        raise InputError(
            f"DIR-LAB image {path}: expected HU in [{info.min - HU_OFFSET}, "
            f"{info.max - HU_OFFSET}], found [{stored.min() - HU_OFFSET:g}, "
            f"{stored.max() - HU_OFFSET:g}]"
        )
    write_bytes(path, np.ascontiguousarray(stored.astype("<i2")).tobytes())


def read_dirlab_landmarks(path: str | os.PathLike, case: int) -> np.ndarray:
    """Read a DIR-LAB landmark file (1-based voxel x y z) as world mm (N, 3) on the case grid."""
    return read_points(path, grid=case_grid(case), what=f"DIR-LAB case {case} landmarks",
                       format="dirlab")


@dataclass(frozen=True, eq=False)
class DirLabCase:
    """One DIR-LAB case: T00 (fixed) and T50 (moving) images and landmarks (world mm).

    ``fixed`` and ``moving`` are None when loaded with ``with_images=False``.
    """

    case: int
    fixed: Image | None
    moving: Image | None
    fixed_points: np.ndarray
    moving_points: np.ndarray

    @property
    def grid(self) -> Grid:
        return case_grid(self.case)


def load_case(root: str | os.PathLike | None, case: int, with_images: bool = True,
              landmark_root: str | os.PathLike | None = None) -> DirLabCase:
    """Load a case from ``root``: T00 = fixed, T50 = moving, landmarks in world mm.

    Landmarks are searched in ``landmark_root`` when given, else in ``root``. With
    ``with_images=False`` only the landmarks are read (``root`` may then be None).
    """
    case = _check_case(case)
    lm_root = landmark_root if landmark_root is not None else root
    if lm_root is None:
        raise InputError("DIR-LAB: expected a data folder or a landmark folder, found neither")
    points = [
        read_dirlab_landmarks(find_case_file(lm_root, case, phase, kind="landmarks"), case)
        for phase in PHASES
    ]
    images: list[Image | None] = [None, None]
    if with_images:
        if root is None:
            raise InputError("DIR-LAB: expected an image folder, found none")
        images = [read_dirlab_image(find_case_file(root, case, p), case) for p in PHASES]
    return DirLabCase(case, images[0], images[1], points[0], points[1])
