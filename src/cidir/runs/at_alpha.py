"""The α a command works at, and the provenance stamped on the files it writes."""

from __future__ import annotations

import numpy as np

from cidir.errors import InputError
from cidir.runs.folder import RunFolder


def check_alpha(alpha: float | None, what: str = "--alpha") -> float | None:
    """``alpha`` unchanged; InputError unless it is None or a number in [0, 1]."""
    if alpha is not None and not (np.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise InputError(f"{what}: expected a value in [0, 1], found {alpha}")
    return alpha


def alpha_for(run: RunFolder, alpha: float | None) -> float:
    """``alpha`` checked, or the run's selected α when it is None."""
    check_alpha(alpha)
    return run.selected_alpha() if alpha is None else float(alpha)


def provenance(run: RunFolder, alpha: float) -> dict[str, str]:
    """Header entries naming the fit and α an exported file comes from."""
    ident = run.identity()
    run_id = ident.run_id if ident else "unknown"
    return {"cidir_run_id": run_id, "cidir_alpha": f"{alpha:.6g}",
            "ITK_FileNotes": f"cidir run {run_id} alpha {alpha:.6g}"}
