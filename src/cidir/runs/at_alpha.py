"""The α a command works at, and the provenance stamped on the files it writes."""

from __future__ import annotations

from cidir.runs.folder import RunFolder
from cidir.selection.alpha_space import (
    Alpha,
    alpha_text,
    as_alpha,
    check_count,
    check_values,
    components,
)


def check_alpha(alpha: Alpha | None, what: str = "--alpha") -> Alpha | None:
    """``alpha`` unchanged; InputError unless it is None or values in [0, 1]."""
    if alpha is not None:
        check_values(components(alpha), what)
    return alpha


def alpha_for(run: RunFolder, alpha: Alpha | None) -> Alpha:
    """``alpha`` checked (one value per hyperparameter the run's model is conditioned on), or
    the run's selected α when it is None."""
    check_alpha(alpha)
    if alpha is None:
        return run.selected_alpha()
    return check_count(as_alpha(alpha), run.num_conditions())


def provenance(run: RunFolder, alpha: Alpha) -> dict[str, str]:
    """Header entries naming the fit and α an exported file comes from."""
    ident = run.identity()
    run_id = ident.run_id if ident else "unknown"
    return {"cidir_run_id": run_id, "cidir_alpha": alpha_text(alpha),
            "ITK_FileNotes": f"cidir run {run_id} alpha {alpha_text(alpha)}"}
