"""A 4D-CT breathing phantom with exact ground truth: the project's built-in demo data.

A CT-like thorax (HU) in two phases, inhale (fixed, like DIR-LAB T00) and exhale (moving,
like T50), related by an analytic breathing displacement ``u`` (see
:mod:`cidir.data.phantom_motion`). Frames: world mm, LPS (x = patient's left, y =
posterior, z = superior); arrays are (z, y, x); points are (N, 3) in (x, y, z) order.

The anatomy A is defined in the exhale frame (:mod:`cidir.data.phantom_anatomy`) and
rendered analytically: ``exhale(y) = A(y)`` and ``inhale(x) = A(x + u(x))``, so
``sitk.Resample(exhale, inhale, DisplacementFieldTransform(field))`` reproduces the inhale
image up to noise, partial volume and interpolation. Slice-thickness partial volume is
rendered by supersampling along the grid's z axis, identically in both phases.

Variants (:data:`VARIANTS`): ``"smooth"``, the original phantom (motion continuous
everywhere, the same lung density in both phases), and ``"sliding"``, in which the lungs
slide along a nearly still chest wall (``u`` is discontinuous at the pleural cavity's
boundary, see :mod:`cidir.data.phantom_motion`) and the lung parenchyma conserves its mass:
``ρ_inhale(x) = ρ_exhale(φ(x)) · det ∇φ(x)`` with ``ρ = 1 + HU/1000``, so the exhale lungs
are denser. The exhale image of both variants is the same for the same seed (the anatomy
is defined at exhale); only the inhale image and the field differ. In the sliding variant
the true field ``Phantom.field`` steps by up to about 17 mm cranio-caudally at the lungs'
outer boundary, so the field error and TRE near the chest wall measure how well a
registration lets the lungs slide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cidir.data.phantom_anatomy import Anatomy, lungs_sd
from cidir.data.phantom_motion import BreathingMotion
from cidir.geometry.grid import Grid
from cidir.geometry.image import Image
from cidir.io.atomic import atomic_path, write_text

#: World position (mm, LPS) of the anatomy centre (local origin of the anatomy and motion).
ANATOMY_CENTRE = (1.5, -12.0, -160.0)
NOISE_HU = 20.0
_CHUNK_POINTS = 800_000  # points rendered at once (bounds the memory used)
LANDMARK_WALL_MM = 5.0  # landmarks lie at least this far from the sliding interface


@dataclass(frozen=True)
class PhantomVariant:
    """What a variant changes: ``sliding`` lungs along a still chest wall (a discontinuous
    motion) and ``exhale_density`` (lung parenchyma denser at exhale, mass conserved)."""

    sliding: bool = False
    exhale_density: bool = False


VARIANTS = {
    "smooth": PhantomVariant(sliding=False, exhale_density=False),
    "sliding": PhantomVariant(sliding=True, exhale_density=True),
}


@dataclass(frozen=True)
class PhantomSize:
    """Sampling of a phantom: grid size (x, y, z), spacing (mm, x, y, z), z supersampling."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    supersample: int = 3


PHANTOM_SIZES = {
    "small": PhantomSize(size=(128, 96, 52), spacing=(2.6, 2.6, 5.0), supersample=3),
    "dirlab": PhantomSize(size=(256, 256, 100), spacing=(1.25, 1.25, 2.5), supersample=3),
}


@dataclass(frozen=True, eq=False)
class Phantom:
    """Inhale/exhale CT pair with labels, lung masks, true field and landmark pairs.

    ``field`` is (z, y, x, 3) float64, world mm (LPS), on the inhale grid: inhale point x
    corresponds to exhale point x + u(x). ``inhale_points`` / ``exhale_points`` are (N, 3)
    world mm with ``exhale = inhale + u(inhale)`` from the analytic motion.
    Labels: 1 left lung, 2 right lung, 3 heart, 4 tumour, 5 vessels/airways. ``variant``
    is a key of :data:`VARIANTS`; with ``"sliding"`` the field is discontinuous at the
    pleural cavity's boundary and the inhale lungs are less dense than the exhale lungs.
    ``motion`` and ``anatomy`` are the analytic models (local frame: world minus
    ``ANATOMY_CENTRE``); :meth:`displacement` evaluates u at world points.
    """

    grid: Grid
    seed: int
    size: str
    variant: str
    inhale: Image
    exhale: Image
    inhale_labels: Image
    exhale_labels: Image
    inhale_lung_mask: Image
    exhale_lung_mask: Image
    field: np.ndarray
    inhale_points: np.ndarray
    exhale_points: np.ndarray
    motion: BreathingMotion
    anatomy: Anatomy

    def displacement(self, world: np.ndarray) -> np.ndarray:
        """Analytic u (mm) at inhale world points (N, 3) mm, LPS."""
        return self.motion.displacement(np.asarray(world, float) - np.asarray(ANATOMY_CENTRE))


def phantom_grid(size: str = "small") -> Grid:
    """The grid of a phantom size: identity direction, anatomy centred, non-zero origin."""
    if size not in PHANTOM_SIZES:
        raise ValueError(f"phantom size must be one of {sorted(PHANTOM_SIZES)}, found {size!r}")
    spec = PHANTOM_SIZES[size]
    # the grid's z centre is 10 mm below the anatomy centre (room for the inhale lung base)
    center = np.asarray(ANATOMY_CENTRE) + np.array([0.0, 0.0, -10.0])
    return Grid.centered(spec.size, spec.spacing, tuple(center))


def _slab_points(grid: Grid, k0: int, k1: int) -> np.ndarray:
    """World points (N, 3) mm of the voxels in slices k0 <= k < k1, in array (C) order."""
    nxy = grid.size[0] * grid.size[1]
    return grid.world_points(np.arange(k0 * nxy, k1 * nxy))


def _render_phase(anatomy: Anatomy, grid: Grid, motion: BreathingMotion | None,
                  supersample: int, density: bool = False):
    """Render one phase on ``grid``: HU (float64), labels (int32), lung mask (bool), (z,y,x).

    With ``motion`` the inhale phase is rendered (anatomy sampled at x + u(x)), else the
    exhale phase; with ``density`` too, the inhale parenchyma's density is the exhale one
    times det ∇φ of the motion inside the pleural cavity (no difference across the sliding
    interface). HU is averaged over ``supersample`` positions along the grid's z axis
    (odd, so that labels and mask come from the voxel centre).
    """
    centre = np.asarray(ANATOMY_CENTRE)
    w = float(min(grid.spacing[:2]))  # in-plane voxel size: the width of rendered edges
    dz = grid.voxel_step(2)
    offsets = (np.arange(supersample) - (supersample - 1) / 2) / supersample
    nxy = grid.size[0] * grid.size[1]
    slab = max(1, _CHUNK_POINTS // (nxy * supersample))
    hu = np.empty(grid.num_voxels)
    labels = np.empty(grid.num_voxels, dtype=np.int32)
    lung = np.empty(grid.num_voxels, dtype=bool)
    centre_row = supersample // 2
    for k0 in range(0, grid.size[2], slab):
        k1 = min(k0 + slab, grid.size[2])
        p = _slab_points(grid, k0, k1) - centre
        q = (p[None] + offsets[:, None, None] * dz).reshape(-1, 3)
        ratio = None
        if motion is not None:
            if density:
                ratio = _volume_ratio(motion, q.copy())
            q += motion.displacement(q)
        h, lab, lm = anatomy.render(q, w, ratio)
        part = slice(k0 * nxy, k1 * nxy)
        hu[part] = h.reshape(supersample, -1).mean(axis=0)
        labels[part] = lab.reshape(supersample, -1)[centre_row]
        lung[part] = lm.reshape(supersample, -1)[centre_row]
    shape = grid.shape
    return hu.reshape(shape), labels.reshape(shape), lung.reshape(shape)


def _volume_ratio(motion: BreathingMotion, inhale: np.ndarray):
    """det ∇φ of the motion's cavity branch at the given rows of local ``inhale`` points."""
    return lambda i: motion.cavity_volume_ratio(inhale[i])


def _sample_field(motion: BreathingMotion, grid: Grid) -> np.ndarray:
    """u (mm, LPS) at every voxel of ``grid``: array (z, y, x, 3) float64, slab by slab."""
    field = np.empty(grid.shape + (3,))
    slab = max(1, _CHUNK_POINTS // (grid.size[0] * grid.size[1]))
    for k0 in range(0, grid.size[2], slab):
        k1 = min(k0 + slab, grid.size[2])
        local = _slab_points(grid, k0, k1) - np.asarray(ANATOMY_CENTRE)
        field[k0:k1] = motion.displacement(local).reshape((k1 - k0,) + grid.shape[1:] + (3,))
    return field


def _landmarks(anatomy: Anatomy, motion: BreathingMotion, grid: Grid):
    """Inhale/exhale landmark pairs (world mm) at vessel bifurcations deep in the lungs,
    at least ``LANDMARK_WALL_MM`` from the sliding interface if there is one."""
    centre = np.asarray(ANATOMY_CENTRE)
    b = anatomy.bifurcations
    keep = (lungs_sd(b) < -8.0) & (anatomy.tumour_sd(b) > 8.0)
    b = b[keep]
    # drop near-duplicates (closer than 3 mm to an earlier point)
    d = np.linalg.norm(b[:, None] - b[None], axis=-1)
    b = b[~np.any(np.tril(d < 3.0, k=-1), axis=1)]
    x = motion.inverse(b, tol=1e-8)
    y = x + motion.displacement(x)
    inside = motion.interface_distance(x) >= LANDMARK_WALL_MM
    inside &= grid.contains_voxel(grid.world_to_voxel(x + centre), margin=-2.0)
    inside &= grid.contains_voxel(grid.world_to_voxel(y + centre), margin=-2.0)
    return x[inside] + centre, y[inside] + centre


def make_phantom(size: str = "small", seed: int = 0, variant: str = "smooth") -> Phantom:
    """Generate the breathing phantom deterministically from ``seed`` (see :class:`Phantom`).

    ``variant``: ``"smooth"`` (the original phantom) or ``"sliding"`` (lungs sliding along
    a still chest wall, denser lungs at exhale); the same seed gives the same anatomy,
    amplitudes, noise and exhale image in both.
    """
    grid = phantom_grid(size)
    spec = PHANTOM_SIZES[size]
    if spec.supersample % 2 != 1:
        raise ValueError(f"phantom size {size!r}: supersample must be odd")
    if variant not in VARIANTS:
        raise ValueError(f"phantom variant must be one of {sorted(VARIANTS)}, found "
                         f"{variant!r}")
    kind = VARIANTS[variant]
    s_anat, s_motion, s_in, s_ex = np.random.SeedSequence(int(seed)).spawn(4)
    anatomy = Anatomy.generate(np.random.default_rng(s_anat))
    motion = BreathingMotion.from_rng(np.random.default_rng(s_motion), sliding=kind.sliding)
    images = {}
    for phase, mot, ss in (("inhale", motion, s_in), ("exhale", None, s_ex)):
        hu, labels, lung = _render_phase(anatomy, grid, mot, spec.supersample,
                                         density=kind.exhale_density)
        noise = np.random.default_rng(ss).standard_normal(grid.shape, dtype=np.float32)
        hu = np.clip(hu.astype(np.float32) + NOISE_HU * noise, -1024.0, 3071.0)
        images[phase] = (Image(hu, grid, f"phantom:{phase}"),
                         Image(labels, grid, f"phantom:{phase}_labels"),
                         Image(lung.astype(np.uint8), grid, f"phantom:{phase}_lungmask"))
    field = _sample_field(motion, grid)
    inhale_points, exhale_points = _landmarks(anatomy, motion, grid)
    return Phantom(
        grid=grid, seed=int(seed), size=size, variant=variant,
        inhale=images["inhale"][0], exhale=images["exhale"][0],
        inhale_labels=images["inhale"][1], exhale_labels=images["exhale"][1],
        inhale_lung_mask=images["inhale"][2], exhale_lung_mask=images["exhale"][2],
        field=field, inhale_points=inhale_points, exhale_points=exhale_points,
        motion=motion, anatomy=anatomy,
    )


def field_to_sitk(field: np.ndarray, grid: Grid):
    """A (z, y, x, 3) mm field on ``grid`` as a ``sitkVectorFloat64`` image."""
    return grid.to_sitk(np.asarray(field, dtype=np.float64), vector=True)


def _points_csv(points: np.ndarray) -> str:
    rows = ["x,y,z"] + [",".join(repr(float(v)) for v in p) for p in points]
    return "\n".join(rows) + "\n"


def write_phantom(phantom: Phantom, out_dir: str | Path) -> dict[str, Path]:
    """Write the phantom's images, field and points atomically into ``out_dir``.

    Files: ``inhale``/``exhale`` (HU), ``*_labels``, ``*_lungmask`` and ``field_true``
    (vector, mm LPS, inhale grid) as ``.nii.gz``; ``inhale_points.csv`` and
    ``exhale_points.csv`` (header ``x,y,z``, world mm LPS). Returns the paths by key.
    """
    import SimpleITK as sitk

    out = Path(out_dir)
    images = {
        "inhale": phantom.inhale.to_sitk(),
        "exhale": phantom.exhale.to_sitk(),
        "inhale_labels": phantom.inhale_labels.to_sitk(),
        "exhale_labels": phantom.exhale_labels.to_sitk(),
        "inhale_lungmask": phantom.inhale_lung_mask.to_sitk(),
        "exhale_lungmask": phantom.exhale_lung_mask.to_sitk(),
        "field_true": field_to_sitk(phantom.field, phantom.grid),
    }
    paths: dict[str, Path] = {}
    for key, image in images.items():
        paths[key] = out / f"{key}.nii.gz"
        with atomic_path(paths[key]) as tmp:
            sitk.WriteImage(image, str(tmp), True)
    for key, points in (("inhale_points", phantom.inhale_points),
                        ("exhale_points", phantom.exhale_points)):
        paths[key] = out / f"{key}.csv"
        write_text(paths[key], _points_csv(points))
    return paths
