"""Initial (linear) alignment of a moving image to a fixed image.

Every matrix here is the homogeneous (D+1)×(D+1) float64 matrix ``[A t; 0 1]`` that maps
FIXED world points (mm, LPS) to MOVING world points (mm, LPS): ``y = A @ x + t``. This is the
ITK resampling convention (``sitk.Resample(moving, fixed, transform)`` samples the moving
image at ``transform(x)`` for each fixed point ``x``), the one used by ANTs, elastix and
3D Slicer transform files, and the ``init_matrix`` of
:class:`~cidir.fields.transform.ConditionedTransform`.

Methods (see :func:`initial_alignment`):

- ``none``: identity;
- ``moments``: translation aligning the centres of mass (of the masks when given);
- ``rigid``: Euler transform optimized with Mattes mutual information, from ``moments``;
- ``affine``: ``rigid``, then an affine transform optimized from it;
- a path to an ITK transform file (``.tfm``, ``.txt``, ``.mat``, ``.h5``) holding a linear
  transform (or a composite of linear transforms), fixed → moving.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from cidir.errors import InputError, itk_message
from cidir.geometry.affine import affine_parts, homogeneous
from cidir.geometry.image import Image
from cidir.io.atomic import atomic_path
from cidir.io.native import native_stderr_silenced

METHODS = ("none", "moments", "rigid", "affine")

# registration settings (SimpleITK examples: Mattes MI, 3-level pyramid, physical-shift scales)
HISTOGRAM_BINS = 50
SHRINK_FACTORS = (4, 2, 1)
SMOOTHING_SIGMAS_MM = (2.0, 1.0, 0.0)
SAMPLING_FRACTION = 0.15  # fraction of the voxels of a pyramid level used by the metric ...
MAX_SAMPLES = 20_000  # ... capped at this many samples per level (speed on large images)
MIN_SAMPLES = 2_000  # ... but at least this many (or every voxel) on small levels
ITERATIONS = 100
LEARNING_RATE = 2.0  # initial step of regular-step gradient descent, ~mm of physical shift
MIN_STEP = 1e-3
# one thread: with more, ITK's sums over work units differ in the last bits from run to run
# (measured: up to 1e-12 mm with 2 threads), and the matrix must be identical for one seed
NUM_THREADS = 1
# larger images are first averaged over bins of voxels (finest axes first) to at most this
# many voxels: an initial alignment needs no sub-millimetre detail, and smoothing every
# pyramid level of a 256×256×100 CT costs seconds
MAX_WORKING_VOXELS = 2_000_000
# metric masks are dilated by this much (mm): the inside of an organ mask (e.g. the lungs in
# MRI) is nearly uniform, and its boundary, which carries the alignment, must be sampled
MASK_DILATION_MM = 10.0


# ---------------------------------------------------------------------- matrices
def _linear_matrix(transform: sitk.Transform, ndim: int) -> np.ndarray:
    """Matrix of one linear, non-composite transform (fixed → moving, mm)."""
    t = transform.Downcast()
    if all(hasattr(t, f) for f in ("GetMatrix", "GetCenter", "GetTranslation")):
        # ITK: y = A (x - c) + c + t
        a = np.asarray(t.GetMatrix(), dtype=np.float64).reshape(ndim, ndim)
        c = np.asarray(t.GetCenter(), dtype=np.float64)
        tr = np.asarray(t.GetTranslation(), dtype=np.float64)
        return homogeneous(a, c + tr - a @ c)
    if isinstance(t, sitk.TranslationTransform):
        return homogeneous(np.eye(ndim), np.asarray(t.GetOffset(), dtype=np.float64))
    # any other linear transform (identity, scale, ...): probe it at D+1 points
    origin = np.asarray(t.TransformPoint((0.0,) * ndim), dtype=np.float64)
    columns = [
        np.asarray(t.TransformPoint(tuple(np.eye(ndim)[j])), dtype=np.float64) - origin
        for j in range(ndim)
    ]
    return homogeneous(np.stack(columns, axis=1), origin)


def _flatten(transform: sitk.Transform) -> list[sitk.Transform]:
    """The transforms of a (nested) composite, in the order they are stored.

    ITK applies a composite's transforms last-added first: T(x) = T_0(T_1(...T_n-1(x))).
    """
    t = transform.Downcast()
    if isinstance(t, sitk.CompositeTransform):
        out: list[sitk.Transform] = []
        for i in range(t.GetNumberOfTransforms()):
            out.extend(_flatten(t.GetNthTransform(i)))
        return out
    return [t]


def matrix_from_sitk_transform(transform: sitk.Transform, ndim: int) -> np.ndarray:
    """The (D+1)×(D+1) float64 matrix of a linear SimpleITK transform (fixed → moving, mm).

    Accepts translation, Euler, similarity, versor, scale, affine and matrix-offset
    transforms, and composites made only of those. Raises InputError for a non-linear
    transform (B-spline, displacement field, ...) or a dimension other than ``ndim``.
    """
    if transform.GetDimension() != ndim:
        raise InputError(
            f"transform: expected a {ndim}D transform, found a {transform.GetDimension()}D "
            f"{transform.GetName()}"
        )
    matrix = np.eye(ndim + 1)
    for part in _flatten(transform):
        if not part.IsLinear():
            raise InputError(
                f"transform: found a {part.GetName()}, which is not linear; only linear "
                f"transforms (translation, Euler/rigid, similarity, versor, affine, "
                f"matrix-offset, or a composite of these) are accepted as initialization"
            )
        matrix = matrix @ _linear_matrix(part, ndim)
    return matrix


def _check_matrix(matrix) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] not in (3, 4):
        raise ValueError(f"matrix: expected a 3×3 or 4×4 homogeneous matrix, found {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("matrix: expected finite values")
    return m


def sitk_transform_from_matrix(matrix) -> sitk.AffineTransform:
    """A ``sitk.AffineTransform`` (centre 0) with the same fixed → moving mapping (mm)."""
    linear, offset = affine_parts(_check_matrix(matrix))
    transform = sitk.AffineTransform(len(offset))
    transform.SetMatrix(tuple(linear.ravel()))
    transform.SetTranslation(tuple(offset))
    return transform


def write_transform(matrix, path: str | os.PathLike) -> None:
    """Write the matrix as an ITK affine transform file, atomically.

    The format follows the extension (``.tfm``/``.txt`` text, ``.mat`` ITK-MATLAB, ``.h5``),
    readable by ``sitk.ReadTransform``, ANTs, elastix (ITK transforms) and 3D Slicer; it maps
    fixed points to moving points (mm, LPS), as ITK transform files do.
    """
    transform = sitk_transform_from_matrix(matrix)
    with atomic_path(path) as tmp:
        sitk.WriteTransform(transform, str(tmp))


def read_transform_matrix(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read a linear ITK transform file as a (D+1)×(D+1) matrix (fixed → moving, mm).

    Raises InputError for a missing or unreadable file, a non-linear transform, or a
    dimension other than ``ndim`` (that of the images).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"initial transform {p}: expected a transform file, found no such file")
    try:
        with native_stderr_silenced():
            transform = sitk.ReadTransform(str(p))
    except (RuntimeError, UnicodeDecodeError) as exc:
        reason = itk_message(exc)
        raise InputError(
            f"initial transform {p}: expected an ITK transform file (.tfm, .txt, .mat, .h5), "
            f"found an unreadable file" + (f" ({reason})" if reason else "")
        ) from None
    if transform.GetDimension() != ndim:
        raise InputError(
            f"initial transform {p}: expected a {ndim}D transform like the images, found a "
            f"{transform.GetDimension()}D {transform.GetName()}"
        )
    try:
        return matrix_from_sitk_transform(transform, ndim)
    except InputError as exc:
        raise InputError(f"initial transform {p}: {str(exc).removeprefix('transform: ')}"
                         ) from None


# ---------------------------------------------------------------------- images
def _float_image(image: Image) -> sitk.Image:
    """The image as a float32 SimpleITK image with its grid."""
    return image.grid.to_sitk(np.asarray(image.array, dtype=np.float32))


def _bin_factors(size, spacing, max_voxels: int) -> list[int]:
    """Per-axis integer bin sizes bringing ``prod(size / bins)`` to at most ``max_voxels``,
    doubling the bin of the axis with the finest binned spacing first."""
    bins = [1] * len(size)
    while np.prod([max(n // b, 1) for n, b in zip(size, bins, strict=True)]) > max_voxels:
        candidates = [j for j in range(len(size)) if size[j] // bins[j] > 1]
        if not candidates:
            break
        j = min(candidates, key=lambda k: (spacing[k] * bins[k], k))
        bins[j] *= 2
    return bins


def _working_image(image: Image) -> sitk.Image:
    """The image as float32 SimpleITK image, bin-averaged to <= MAX_WORKING_VOXELS voxels
    (the world positions of the bins are kept exactly)."""
    out = _float_image(image)
    bins = _bin_factors(image.grid.size, image.grid.spacing, MAX_WORKING_VOXELS)
    return sitk.BinShrink(out, bins) if any(b > 1 for b in bins) else out


def _mask_image(mask: Image, dilation_mm: float = 0.0) -> sitk.Image:
    """A mask (nonzero = inside) as a uint8 SimpleITK image with its grid, dilated by a
    box of half-width ``dilation_mm`` (mm, rounded to whole voxels per axis)."""
    out = mask.grid.to_sitk(np.asarray(mask.array != 0, dtype=np.uint8))
    steps = mask.grid.mm_to_voxel_steps(np.full(mask.ndim, dilation_mm))
    radius = [int(round(float(s))) for s in steps]
    if any(radius):
        out = sitk.BinaryDilate(out, radius, sitk.sitkBox, 0, 1)
    return out


def _mass_image(image: Image, mask: Image | None, what: str) -> sitk.Image:
    """The mass distribution for moments: the mask (0/1) if given, else the intensities
    shifted to be >= 0 (so that e.g. CT in HU has no negative mass)."""
    if mask is not None:
        if not np.any(mask.array):
            raise InputError(f"{what} mask {mask.source}: expected voxels inside, found none")
        return _float_image(mask.with_array((mask.array != 0).astype(np.float32)))
    array = np.asarray(image.array, dtype=np.float32)
    low = float(array.min()) if array.size else 0.0
    if low < 0:
        array = array - low
    if not np.any(array):
        raise InputError(f"{what} image {image.source}: expected nonzero intensities for "
                         f"moments, found none")
    return _float_image(image.with_array(array))


def _moments_transform(fixed: Image, moving: Image, fixed_mask: Image | None,
                       moving_mask: Image | None) -> sitk.Euler2DTransform | sitk.Euler3DTransform:
    """Euler transform (no rotation) translating the fixed centre of mass onto the moving
    one (mm); its centre is the fixed centre of mass."""
    euler = sitk.Euler3DTransform() if fixed.ndim == 3 else sitk.Euler2DTransform()
    return sitk.CenteredTransformInitializer(
        _mass_image(fixed, fixed_mask, "fixed"),
        _mass_image(moving, moving_mask, "moving"),
        euler,
        sitk.CenteredTransformInitializerFilter.MOMENTS,
    ).Downcast()


# ---------------------------------------------------------------------- registration
def _sampling_percentages(image: sitk.Image, mask: sitk.Image | None) -> list[float]:
    """Per pyramid level, the fraction of voxels sampled: SAMPLING_FRACTION, limited to
    MAX_SAMPLES samples (inside the mask when given) and raised to MIN_SAMPLES."""
    n = float(np.prod(image.GetSize()))
    if mask is not None:  # the fraction of the mask's grid inside; assumed alike on the image's
        inside = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
        n *= max(inside, 1) / float(np.prod(mask.GetSize()))
    out = []
    for shrink in SHRINK_FACTORS:
        count = max(n / shrink ** image.GetDimension(), 1.0)
        samples = min(max(SAMPLING_FRACTION * count, MIN_SAMPLES), MAX_SAMPLES)
        out.append(float(min(1.0, samples / count)))
    return out


def _register(fixed: sitk.Image, moving: sitk.Image, initial: sitk.Transform,
              percentages: list[float], fixed_mask: sitk.Image | None,
              moving_mask: sitk.Image | None, seed: int) -> sitk.Transform:
    """Optimize ``initial`` (fixed → moving) by Mattes mutual information; returns it."""
    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(NUM_THREADS)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=HISTOGRAM_BINS)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    # SimpleITK reads seed 0 as "seed from the wall clock": shift to 1 .. 2^32 - 1
    reg.SetMetricSamplingPercentagePerLevel(percentages, seed % (2**32 - 1) + 1)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        reg.SetMetricMovingMask(moving_mask)
    # gradients by central differences at the samples: no gradient image of every voxel
    reg.MetricUseFixedImageGradientFilterOff()
    reg.MetricUseMovingImageGradientFilterOff()
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=LEARNING_RATE, minStep=MIN_STEP, numberOfIterations=ITERATIONS,
        relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(SHRINK_FACTORS))
    reg.SetSmoothingSigmasPerLevel(list(SMOOTHING_SIGMAS_MM))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(NUM_THREADS)  # the metric's threader
    try:
        return reg.Execute(fixed, moving)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[-200:]
        raise InputError(
            f"initial alignment: the registration failed, e.g. because the images (or masks) "
            f"do not overlap; try method 'moments' or masks ({reason})"
        ) from None
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _affine_from(transform: sitk.Transform, center, ndim: int) -> sitk.AffineTransform:
    """An AffineTransform with the mapping of ``transform`` (linear) and centre ``center``
    (mm): ``y = A (x - c) + c + t``."""
    a, t = affine_parts(matrix_from_sitk_transform(transform, ndim))
    c = np.asarray(center, dtype=np.float64)
    affine = sitk.AffineTransform(ndim)
    affine.SetCenter(tuple(c))
    affine.SetMatrix(tuple(a.ravel()))
    affine.SetTranslation(tuple(t - c + a @ c))
    return affine


def _registration(fixed: Image, moving: Image, method: str, fixed_mask: Image | None,
                  moving_mask: Image | None, seed: int) -> sitk.Transform:
    """The optimized rigid or affine SimpleITK transform (fixed → moving, mm)."""
    f, m = _working_image(fixed), _working_image(moving)
    fm = _mask_image(fixed_mask, MASK_DILATION_MM) if fixed_mask is not None else None
    mm = _mask_image(moving_mask, MASK_DILATION_MM) if moving_mask is not None else None
    percentages = _sampling_percentages(f, fm)
    start = _moments_transform(fixed, moving, fixed_mask, moving_mask)
    transform = _register(f, m, start, percentages, fm, mm, seed)
    if method == "affine":
        affine = _affine_from(transform, start.GetCenter(), fixed.ndim)
        transform = _register(f, m, affine, percentages, fm, mm, seed)
    return transform


def _check_inputs(fixed: Image, moving: Image, fixed_mask: Image | None,
                  moving_mask: Image | None) -> None:
    if fixed.ndim != moving.ndim:
        raise InputError(
            f"moving image {moving.source}: expected a {fixed.ndim}D image like the fixed "
            f"image {fixed.source}, found {moving.ndim}D (size {moving.grid.size})"
        )
    for mask, image, what in ((fixed_mask, fixed, "fixed"), (moving_mask, moving, "moving")):
        if mask is not None and mask.ndim != image.ndim:
            raise InputError(
                f"{what} mask {mask.source}: expected a {image.ndim}D mask like the {what} "
                f"image, found {mask.ndim}D"
            )


def initial_alignment(fixed: Image, moving: Image, method: str,
                      fixed_mask: Image | None = None, moving_mask: Image | None = None,
                      seed: int = 0) -> np.ndarray:
    """Linear alignment fixed → moving as a (D+1)×(D+1) float64 matrix ``[A t; 0 1]``.

    The matrix maps fixed world points (mm, LPS) to moving world points (mm, LPS), the ITK
    resampling convention: resampling the moving image at ``M @ [x, 1]`` for each fixed
    point ``x`` aligns it to the fixed image.

    Args:
        fixed, moving: the images (2D or 3D, the same dimension), any grids.
        method: ``none``, ``moments``, ``rigid``, ``affine`` (see the module docstring), or
            the path of an ITK transform file with a linear fixed → moving transform.
        fixed_mask, moving_mask: optional masks (nonzero = inside), on any grid. ``moments``
            then aligns the mask centroids; ``rigid``/``affine`` evaluate the metric only
            inside them, dilated by ``MASK_DILATION_MM`` (10 mm) so that the organ's
            boundary is sampled.
        seed: seed of the metric's random sampling; the same inputs and seed give the
            identical matrix (the registration runs on one thread; SimpleITK's global
            default thread count is set for the call and restored).

    Raises:
        InputError: unknown method that is no existing file, unreadable or non-linear
            transform file, dimension mismatch, empty mask or failed registration.
    """
    _check_inputs(fixed, moving, fixed_mask, moving_mask)
    d = fixed.ndim
    key = method.strip().lower() if isinstance(method, str) else method
    if key == "none":
        return np.eye(d + 1)
    if key == "moments":
        transform = _moments_transform(fixed, moving, fixed_mask, moving_mask)
        return matrix_from_sitk_transform(transform, d)
    if key in ("rigid", "affine"):
        transform = _registration(fixed, moving, key, fixed_mask, moving_mask, int(seed))
        return matrix_from_sitk_transform(transform, d)
    path = Path(str(method))
    if not path.is_file():
        raise InputError(
            f"initial alignment: expected one of {', '.join(METHODS)} or the path of an ITK "
            f"transform file, found {method!r} (no such method or file)"
        )
    return read_transform_matrix(path, d)
