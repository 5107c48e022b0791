"""Helpers shared by the run-folder tests (reliability, resume, fuzz): a tiny pair on disk,
tiny fit options, and the check that a command failed cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from cidir.cli.main import main
from cidir.data.synthetic import make_synthetic_pair
from cidir.io.images import write_image
from cidir.io.landmarks import write_points
from cidir.training import StopWhen

# a fit of well under a second: tiny network, few iterations and points
TINY = ["--model-width", "16", "--model-hidden-layers", "2", "--model-harmonizer-widths", "16",
        "--training-iterations", "20", "--training-batch-size", "200",
        "--objective-calibration-iterations", "5",
        "--selection-num-alphas", "3", "--selection-sample-points", "2000",
        "--selection-folding-points", "500", "--quiet"]


# the command-line tests' tiny fit (32 wide, 30 iterations): seconds per fit
CLI_TINY = ["--model-width", "32", "--training-iterations", "30", "--training-batch-size",
            "500", "--objective-calibration-iterations", "5", "--selection-num-alphas", "5",
            "--quiet"]


def write_pair(root: Path, size: tuple[int, int, int] = (16, 14, 10), points: int = 6,
               moving_points_name: str = "moving_points.csv") -> dict[str, Path]:
    """A small 3D synthetic pair (anisotropic, rotated grid) with labels, mask and ``points``
    landmark pairs, written under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    pair = make_synthetic_pair(3, seed=2, size=size, spacing=(2.0, 2.5, 4.0))
    paths = {k: root / f"{k}.nii.gz" for k in
             ("fixed", "moving", "fixed_labels", "moving_labels", "mask")}
    write_image(pair.fixed, paths["fixed"])
    write_image(pair.moving, paths["moving"])
    write_image(pair.fixed_labels, paths["fixed_labels"])
    write_image(pair.moving_labels, paths["moving_labels"])
    write_image(pair.fixed_mask, paths["mask"])
    grid = pair.fixed.grid
    fixed_pts = grid.voxel_to_world(np.random.default_rng(0).uniform(3, 8, (points, 3)))
    paths["fixed_points"] = root / "fixed_points.csv"
    paths["moving_points"] = root / moving_points_name
    write_points(paths["fixed_points"], fixed_pts)
    write_points(paths["moving_points"], fixed_pts + pair.true_displacement_at(fixed_pts))
    return paths


def fit_args(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out), *TINY, *extra]


def select_args(files: dict[str, Path], run: Path) -> list[str]:
    return ["select", str(run), "--fixed-labels", str(files["fixed_labels"]),
            "--moving-labels", str(files["moving_labels"])]


def expect_error(capfd, argv: list[str], *words: str) -> str:
    """Run the CLI in-process: exit 2, one line on stderr (also ITK's), no traceback."""
    code = main(argv)
    err = capfd.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"cidir {argv[0]}: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word.lower() in err.lower(), (word, err)
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cidir_process(*args: str, **kwargs) -> subprocess.Popen:
    """The cidir CLI in a subprocess, one torch thread (bit-reproducible, light on CPUs), with
    SIGINT's default action as from a terminal (a test run started in the background of a
    non-interactive shell inherits SIGINT ignored, and a Ctrl-C sent before cidir installs
    its own handler would then be lost)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from cidir.cli.main import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                            errors="replace", **kwargs)


def interrupt_at(iteration: int) -> type[StopWhen]:
    """A StopWhen hook that sends this process SIGINT at ``iteration``, as a user's Ctrl-C
    (monkeypatch it over ``cidir.runs.fit.StopWhen`` to interrupt an in-process fit)."""

    class InterruptAt(StopWhen):
        def on_step(self, state) -> bool:
            if state.iteration == iteration:
                signal.raise_signal(signal.SIGINT)
            return super().on_step(state)

    return InterruptAt
