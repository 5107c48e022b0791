"""Writing a dense displacement field for other tools (ITK, ANTs, elastix, 3D Slicer).

The field is φ(x) − x on the fixed grid, vectors in mm (LPS), fixed → moving (the moving
image is sampled at x + u(x)), the initial affine included. That is what
``SimpleITK.DisplacementFieldTransform``, ANTs ``*Warp.nii.gz``, elastix's
``DeformationFieldTransform`` and Slicer grid transforms read.

Formats:
- ``itk``: a vector image at the given path, any extension SimpleITK writes (.nii.gz, .mha,
  .nrrd); float32 components.
- ``ants``: a NIfTI vector image (ITK writes it as 5D with intent "vector", which
  ``antsApplyTransforms -t`` reads); the path must end in .nii or .nii.gz.
- ``elastix``: a transform parameter file (.txt) for ``transformix -tp``, naming the field
  image written beside it (``<stem>_field.nii.gz``) by its **absolute** path: elastix opens
  ``DeformationFieldFileName`` as given, so a relative name would be resolved against the
  working directory of ``transformix``, not the parameter file's folder. After moving the
  two files, rerun ``cidir export`` or edit that line (a comment in the file says so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.geometry import Grid
from cidir.io.atomic import write_text
from cidir.io.images import write_vector_image

FORMATS = ("itk", "ants", "elastix")


def _fmt(values) -> str:
    return " ".join(f"{float(v):.10g}" for v in values)


def elastix_parameter_text(grid: Grid, field_file: str,
                           provenance: dict[str, str] | None = None) -> str:
    """An elastix parameter file for a DeformationFieldTransform on ``grid``."""
    d = grid.ndim
    # elastix writes Direction column-major (ITK matrix stored by columns)
    direction = grid.direction_column_major
    lines = [f"// {provenance['ITK_FileNotes']}"] if provenance else []
    lines += [
        "// DeformationFieldFileName is absolute: elastix resolves a relative name against the",
        "// working directory of transformix. After moving this file and the field, rerun",
        "// cidir export or edit that line.",
        '(Transform "DeformationFieldTransform")',
        "(NumberOfParameters 0)",
        '(InitialTransformParametersFileName "NoInitialTransform")',
        '(HowToCombineTransforms "Compose")',
        f"(FixedImageDimension {d})",
        f"(MovingImageDimension {d})",
        '(FixedInternalImagePixelType "float")',
        '(MovingInternalImagePixelType "float")',
        f'(DeformationFieldFileName "{field_file}")',
        "(DeformationFieldInterpolationOrder 1)",
        f"(Size {_fmt(grid.size)})",
        f"(Index {_fmt([0] * d)})",
        f"(Spacing {_fmt(grid.spacing)})",
        f"(Origin {_fmt(grid.origin)})",
        f"(Direction {_fmt(direction)})",
        '(UseDirectionCosines "true")',
        '(ResampleInterpolator "FinalBSplineInterpolator")',
        "(FinalBSplineInterpolationOrder 3)",
        '(Resampler "DefaultResampler")',
        "(DefaultPixelValue 0)",
        '(ResultImageFormat "nii.gz")',
        '(ResultImagePixelType "float")',
        '(CompressResultImage "true")',
    ]
    return "\n".join(lines) + "\n"


def check_export_path(path: str | Path, fmt: str) -> Path:
    """InputError unless ``path`` suits ``fmt`` (checked before any work is done)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise InputError(f"--format: expected one of {', '.join(FORMATS)}, found {fmt!r}")
    name = path.name.lower()
    if fmt == "ants" and not name.endswith((".nii", ".nii.gz")):
        raise InputError(f"--field {path}: the ants format is NIfTI; expected a name ending "
                         ".nii.gz (e.g. out1Warp.nii.gz)")
    if fmt == "elastix" and not name.endswith(".txt"):
        raise InputError(f"--field {path}: the elastix format is a parameter file; expected a "
                         "name ending .txt (the field image is written beside it)")
    return path


def elastix_field_path(path: str | Path) -> Path:
    """The field image written beside an elastix parameter file ``<stem>.txt``."""
    path = Path(path)
    return path.with_name(path.name[: -len(".txt")] + "_field.nii.gz")


def write_displacement_field(field: np.ndarray, grid: Grid, path: str | Path,
                             fmt: str = "itk", metadata: dict[str, str] | None = None
                             ) -> list[Path]:
    """Write a field (grid.shape + (D,), mm LPS, fixed → moving); returns the files written.
    ``metadata``: provenance for the image header (and the parameter file's first comment)."""
    path = check_export_path(path, fmt)
    if fmt in ("itk", "ants"):
        write_vector_image(field.astype(np.float32), grid, path, metadata)
        return [path]
    field_path = elastix_field_path(path)
    write_vector_image(field.astype(np.float32), grid, field_path, metadata)
    write_text(path, elastix_parameter_text(grid, str(field_path.resolve()), metadata))
    return [path, field_path]
