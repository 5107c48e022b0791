"""Reading and writing images, label maps, masks and vector images (SimpleITK).

Every array is stored (z, y, x) (or (y, x) in 2D); every grid keeps size, spacing (mm),
origin (mm, LPS) and direction exactly as SimpleITK reads them (see
:class:`~cidir.geometry.grid.Grid`). Formats: anything SimpleITK reads by file name (NIfTI,
MHA/MHD, NRRD, ...) and DICOM series given as a directory. Bad input raises
:class:`~cidir.errors.InputError` with a one-line message naming the file.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from cidir.errors import InputError, itk_message
from cidir.geometry.grid import Grid
from cidir.geometry.image import Image
from cidir.io.atomic import atomic_path
from cidir.io.native import native_stderr_silenced
from cidir.io.regrid import GRID_ATOL_MM, onto_grid

# formats whose header names a separate data file: written into a temporary folder
_DETACHED_HEADERS = (".mhd", ".nhdr", ".hdr")


# ---------------------------------------------------------------------- helpers
def _short_reason(exc: BaseException) -> str:
    """The useful part of a SimpleITK error, on one line (see :func:`itk_message`)."""
    return itk_message(exc) or "not a format SimpleITK reads"


def _dicom_series_files(directory: Path, what: str) -> list[str]:
    """File names of the largest DICOM series in ``directory`` (InputError if none/ambiguous)."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns on stderr for no series
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory))
    except (RuntimeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{what} {directory}: cannot list DICOM series ({_short_reason(exc)})"
        ) from None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    if not ids:
        raise InputError(
            f"{what} {directory}: expected an image file or a folder holding a DICOM series, "
            f"found a folder with no DICOM series"
        )
    series: dict[str, tuple[str, ...]] = {
        sid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), sid) for sid in ids
    }
    counts = sorted((len(files) for files in series.values()), reverse=True)
    if len(counts) > 1 and counts[0] == counts[1]:
        raise InputError(
            f"{what} {directory}: expected one DICOM series (or one largest), found "
            f"{len(ids)} series of which several have {counts[0]} files; give a folder "
            f"with a single series"
        )
    largest = max(series, key=lambda sid: len(series[sid]))
    return list(series[largest])


def _read_sitk(path: str | os.PathLike, what: str) -> sitk.Image:
    """Read a scalar 2D/3D SimpleITK image from a file or a DICOM series folder."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p}: expected an image file, found no such file")
    try:
        if p.is_dir():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(_dicom_series_files(p, what))
            with native_stderr_silenced():
                image = reader.Execute()
        else:
            _check_nifti_on_disk(p, what)
            with native_stderr_silenced():
                image = sitk.ReadImage(str(p))
    except (RuntimeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{what} {p}: expected a readable image, found an unreadable or corrupt file "
            f"({_short_reason(exc)})"
        ) from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{what} {p}: expected a scalar image, found "
            f"{image.GetNumberOfComponentsPerPixel()} components per voxel "
            f"({image.GetPixelIDTypeAsString()})"
        )
    if image.GetDimension() not in (2, 3):
        raise InputError(
            f"{what} {p}: expected a 2D or 3D image, found {image.GetDimension()}D "
            f"(size {image.GetSize()})"
        )
    return image


def _grid_of(image: sitk.Image, what: str, path) -> Grid:
    try:
        return Grid.from_sitk(image)
    except ValueError as exc:
        raise InputError(f"{what} {path}: invalid geometry ({exc})") from None


def _nifti_header(raw: bytes):
    """(endian, datatype code, bitpix, dims, vox_offset) of a NIfTI-1/2 header, or None."""
    for endian in ("<", ">"):
        size = int(np.frombuffer(raw, endian + "i4", 1, 0)[0])
        if size == 348:  # NIfTI-1
            dims = np.frombuffer(raw, endian + "i2", 8, 40).astype(np.int64)
            code, bitpix = np.frombuffer(raw, endian + "i2", 2, 70)
            offset = float(np.frombuffer(raw, endian + "f4", 1, 108)[0])
            return endian, int(code), int(bitpix), dims, int(offset)
        if size == 540:  # NIfTI-2
            code, bitpix = np.frombuffer(raw, endian + "i2", 2, 12)
            dims = np.frombuffer(raw, endian + "i8", 8, 16)
            offset = int(np.frombuffer(raw, endian + "i8", 1, 168)[0])
            return endian, int(code), int(bitpix), dims, offset
    return None


def _check_nifti_on_disk(path, what: str) -> None:
    """Check a ``.nii``/``.nii.gz`` file's stored voxels: complete and finite.

    ITK 5's NIfTI reader silently zero-fills truncated data and replaces NaN and ±inf by 0
    (the latter fixed in ITK 6, PR #6683), so the stored bytes are checked here.
    """
    p = Path(path)
    name = p.name.lower()
    if not p.is_file() or not name.endswith((".nii", ".nii.gz")):
        return
    try:
        with (gzip.open if name.endswith(".gz") else open)(p, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise InputError(
            f"{what} {p}: expected a complete NIfTI file, found a truncated or corrupt "
            f"file ({exc})"
        ) from None
    try:
        endian, code, bitpix, dims, offset = _nifti_header(raw)
    except (TypeError, ValueError):  # no NIfTI header: SimpleITK has judged the file
        return
    ndim = int(dims[0])
    expected = int(np.prod(dims[1:ndim + 1])) * bitpix // 8 if 0 < ndim < 8 else 0
    found = len(raw) - offset
    if found < expected:
        raise InputError(
            f"{what} {p}: expected {expected} bytes of voxel data, found {max(found, 0)} "
            f"(truncated file)"
        )
    dtype = {16: "f4", 64: "f8"}.get(code)
    if dtype is not None and expected:
        data = np.frombuffer(raw, endian + dtype, expected // np.dtype(dtype).itemsize, offset)
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if bad:
            raise InputError(
                f"{what} {p}: expected finite values, found {bad} NaN or infinite voxels"
            )


def _check_finite(array: np.ndarray, what: str, path) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise InputError(
                f"{what} {path}: expected finite values, found {bad} NaN or infinite voxels"
            )


# ---------------------------------------------------------------------- readers
def read_image(path: str | os.PathLike, what: str = "image",
               allow_constant: bool = False) -> Image:
    """Read a scalar image as float32 (z, y, x) with its grid (mm, LPS) kept exactly.

    ``path`` is a file SimpleITK reads or a folder holding a DICOM series (the largest
    series is read). Raises InputError for a missing, unreadable, vector, non-finite or
    (unless ``allow_constant``) constant image.
    """
    image = _read_sitk(path, what)
    grid = _grid_of(image, what, path)
    try:
        array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(
            f"{what} {path}: expected real-valued voxels, found "
            f"{image.GetPixelIDTypeAsString()} ({_short_reason(exc)})"
        ) from None
    _check_finite(array, what, path)
    if not allow_constant and array.size and array.min() == array.max():
        raise InputError(
            f"{what} {path}: expected an image with contrast, found a constant image "
            f"(every voxel = {float(array.flat[0]):g})"
        )
    return Image(array, grid, str(path))


def read_label_map(path: str | os.PathLike, what: str = "labels",
                   reference: Grid | None = None) -> Image:
    """Read a label map as int32 (z, y, x); float-stored integral labels are cast.

    With ``reference`` (its image's grid), a map on another grid is resampled onto it
    (nearest, with a logged note; :func:`cidir.io.regrid.onto_grid`). Raises InputError for
    non-integral or negative labels, or a map entirely outside ``reference``.
    """
    image = _read_sitk(path, what)
    grid = _grid_of(image, what, path)
    array = sitk.GetArrayFromImage(image)
    if np.issubdtype(array.dtype, np.floating):
        _check_finite(array, what, path)
        frac = int(np.count_nonzero(array != np.round(array)))
        if frac:
            raise InputError(
                f"{what} {path}: expected integer labels, found {frac} voxels with a "
                f"fractional value (e.g. {float(array[array != np.round(array)][0]):g})"
            )
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{what} {path}: expected integer labels, found {array.dtype}")
    if array.size and array.min() < 0:
        raise InputError(
            f"{what} {path}: expected labels >= 0, found negative labels "
            f"(minimum {float(array.min()):g})"
        )
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise InputError(
            f"{what} {path}: expected labels below 2^31, found {float(array.max()):g}"
        )
    labels = Image(array.astype(np.int32), grid, str(path))
    return onto_grid(labels, reference, what) if reference is not None else labels


def read_mask(path: str | os.PathLike, what: str = "mask",
              reference: Grid | None = None) -> Image:
    """Read a mask as bool (z, y, x): nonzero voxels are inside.

    With ``reference`` (its image's grid), a mask on another grid is resampled onto it
    (nearest, with a logged note). Raises InputError for an empty mask (also once
    resampled) or a mask entirely outside ``reference``.
    """
    image = _read_sitk(path, what)
    grid = _grid_of(image, what, path)
    array = sitk.GetArrayFromImage(image)
    _check_finite(array, what, path)
    mask = Image(array != 0, grid, str(path))
    if not mask.array.any():
        raise InputError(f"{what} {path}: expected a mask with voxels inside, found it empty")
    return onto_grid(mask, reference, what) if reference is not None else mask


# ---------------------------------------------------------------------- checks
def check_same_grid(image: Image, reference: Grid, what: str) -> None:
    """Raise InputError unless ``image`` lies on ``reference`` (within 1e-3 mm)."""
    if image.grid.same_as(reference, atol=GRID_ATOL_MM):
        return
    found, expected = image.grid.describe(), reference.describe()
    if not np.allclose(image.grid.direction, reference.direction, atol=GRID_ATOL_MM) \
            and image.grid.ndim == reference.ndim:
        found += f", direction {tuple(round(v, 4) for v in image.grid.direction)}"
        expected += f", direction {tuple(round(v, 4) for v in reference.direction)}"
    source = f" {image.source}" if image.source else ""
    raise InputError(
        f"{what}{source}: expected the reference grid [{expected}], found [{found}]"
    )


def check_common_labels(fixed_labels: Image, moving_labels: Image, what: str) -> list[int]:
    """Sorted foreground labels (> 0) present in both label maps; InputError if none."""
    fixed = np.unique(fixed_labels.array)
    moving = np.unique(moving_labels.array)
    common = np.intersect1d(fixed[fixed > 0], moving[moving > 0])
    if common.size == 0:
        raise InputError(
            f"{what}: expected foreground labels (> 0) present in both "
            f"{fixed_labels.source or 'fixed labels'} and "
            f"{moving_labels.source or 'moving labels'}, found none in common "
            f"(fixed has {int(np.count_nonzero(fixed > 0))}, moving has "
            f"{int(np.count_nonzero(moving > 0))} foreground labels)"
        )
    return [int(v) for v in common]


def check_same_dimension(a: Image, b: Image, what_a: str, what_b: str) -> None:
    """Raise InputError when one image is 2D and the other 3D."""
    if a.ndim != b.ndim:
        raise InputError(
            f"{what_b} {b.source}: expected a {a.ndim}D image like {what_a} {a.source}, "
            f"found {b.ndim}D (size {b.grid.size})"
        )


# ---------------------------------------------------------------------- writers
@contextlib.contextmanager
def _atomic_image_path(path: Path):
    """Like :func:`atomic_path`, also for header + data file formats (.mhd, .nhdr, .hdr).

    Detached formats are written under their final names in a temporary folder beside
    ``path``; the data files are moved first and the header last.
    """
    if not path.name.lower().endswith(_DETACHED_HEADERS):
        with atomic_path(path) as tmp:
            yield tmp
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp_dir / path.name
        written = sorted(tmp_dir.iterdir(), key=lambda f: f.name == path.name)
        for f in written:
            os.replace(f, path.parent / f.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _write_sitk(image: sitk.Image, path: str | os.PathLike,
               metadata: dict[str, str] | None = None) -> None:
    """Write atomically; ``metadata`` goes into the header where the format keeps it (MHA,
    NRRD: every key; NIfTI: ``ITK_FileNotes`` as its 80-character ``descrip``)."""
    path = Path(path)
    for key, value in (metadata or {}).items():
        image.SetMetaData(key, str(value))
    try:
        with _atomic_image_path(path) as tmp:
            sitk.WriteImage(image, str(tmp), useCompression=True)
    except RuntimeError as exc:
        raise InputError(f"output image {path}: cannot write it "
                         f"({itk_message(exc) or 'SimpleITK failed'})") from None


def write_image(image: Image, path: str | os.PathLike, dtype=None,
                metadata: dict[str, str] | None = None) -> None:
    """Write an image atomically, geometry kept, format chosen by the extension.

    ``dtype`` (numpy dtype) casts the array first; bool arrays are written as uint8;
    ``metadata``: header entries (provenance), kept where the format allows.
    """
    array = np.asarray(image.array)
    if dtype is not None:
        array = array.astype(dtype)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    _write_sitk(image.grid.to_sitk(array), path, metadata)


def write_vector_image(array: np.ndarray, grid: Grid, path: str | os.PathLike,
                       metadata: dict[str, str] | None = None) -> None:
    """Write ``array`` of shape ``grid.shape + (D,)`` as a D-component vector image.

    Used for displacement fields: vectors in mm (LPS) on the fixed grid, readable by
    ``sitk.DisplacementFieldTransform(sitk.ReadImage(path, sitk.sitkVectorFloat64))``.
    float32 arrays stay float32; anything else is written as float64.
    """
    array = np.asarray(array)
    if array.ndim != grid.ndim + 1 or tuple(array.shape[:-1]) != grid.shape:
        raise ValueError(
            f"vector image {path}: expected an array of shape {grid.shape} + (D,), "
            f"found {array.shape}"
        )
    if array.dtype != np.float32:
        array = array.astype(np.float64)
    _write_sitk(grid.to_sitk(array, vector=True), path, metadata)


def read_vector_image(path: str | os.PathLike, what: str = "vector image"
                      ) -> tuple[np.ndarray, Grid]:
    """Read a vector image: (array of shape ``grid.shape + (D,)``, grid).

    Values as stored (for displacement fields: mm, LPS); NaN/inf raise InputError.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {p}: expected a vector image file, found no such file")
    _check_nifti_on_disk(p, what)
    try:
        with native_stderr_silenced():
            image = sitk.ReadImage(str(p))
    except (RuntimeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{what} {p}: expected a readable vector image, found an unreadable or corrupt "
            f"file ({_short_reason(exc)})"
        ) from None
    if image.GetDimension() not in (2, 3):
        raise InputError(f"{what} {p}: expected a 2D or 3D image, found {image.GetDimension()}D")
    grid = _grid_of(image, what, p)
    array = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() == 1:
        array = array[..., None]
    _check_finite(array, what, p)
    return array, grid
