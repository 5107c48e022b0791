"""Named configurations (``--preset NAME``): TOML files in this package, read with
:meth:`cidir.config.RunConfig.from_preset`.

- ``paper``: the configuration of the cIDIR paper as cidir first implemented it (3×256
  SIREN, per-layer modulation, global NCC, bending λ on a fixed log range [1, 10⁴], constant
  learning rate, 800 iterations of 4000 points, no calibration, no mask margin).
- ``bending-jacobian``: the defaults with two hyperparameters conditioned jointly, α1 driving
  the bending energy and α2 the volume-change penalty |det J − 1| (docs/beyond.md).
"""

from __future__ import annotations

from importlib import resources

from cidir.errors import InputError


def names() -> tuple[str, ...]:
    """The presets shipped with cidir."""
    return tuple(sorted(p.name[:-5] for p in resources.files(__name__).iterdir()
                        if p.name.endswith(".toml")))


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``; InputError naming the presets otherwise."""
    if name not in names():
        raise InputError(f"--preset: expected one of {', '.join(names())}, found {name!r}")
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
