"""Initial linear alignment fixed → moving, as a homogeneous matrix (world mm, LPS)."""

from cidir.alignment.initial import (
    METHODS,
    initial_alignment,
    matrix_from_sitk_transform,
    read_transform_matrix,
    sitk_transform_from_matrix,
    write_transform,
)

__all__ = [
    "METHODS",
    "initial_alignment",
    "matrix_from_sitk_transform",
    "read_transform_matrix",
    "sitk_transform_from_matrix",
    "write_transform",
]
