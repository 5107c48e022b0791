"""Shared fixtures: the optional real data folder ``../shared/data``, the command-line
tests' pair and trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``$CIDIR_SHARED_DATA`` or ``../shared/data`` beside the project root."""
    env = os.environ.get("CIDIR_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real-data folder; the test is skipped, with a message, when it is absent."""
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"real data folder {root} is absent (set CIDIR_SHARED_DATA)")
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread avoids oversubscription on shared cores (modules opt
    in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def dirlab_download(tmp_path, monkeypatch):
    """A small breathing phantom written as a DIR-LAB case 1 download (headerless int16
    images and 1-based landmark files under name variants in subfolders); the case table is
    patched to the phantom's grid. Returns (root folder, phantom)."""
    import numpy as np

    from cidir.data import dirlab
    from cidir.data.phantom import make_phantom
    from cidir.io.landmarks import write_points

    phantom = make_phantom("small", seed=3)
    grid = phantom.grid
    monkeypatch.setitem(dirlab.CASES, 1, (grid.size, grid.spacing))
    case_grid = dirlab.case_grid(1)
    root = tmp_path / "download"
    pack = root / "Case1Pack"
    dirlab.write_dirlab_image(phantom.inhale.array, pack / "Images" / "case1_T00_s.img")
    dirlab.write_dirlab_image(phantom.exhale.array, pack / "Images" / "case1_T50_s.img")
    for phase, pts in (("T00", phantom.inhale_points), ("T50", phantom.exhale_points)):
        voxel = np.round(grid.world_to_voxel(pts))  # DIR-LAB landmarks are whole voxels
        write_points(pack / "ExtremePhases" / f"Case1_300_{phase}_xyz.txt",
                     case_grid.voxel_to_world(voxel), grid=case_grid, format="dirlab")
    return root, phantom


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory) -> dict[str, Path]:
    """A small 3D synthetic pair on disk (anisotropic, rotated grid), moving points as .fcsv."""
    from runs_helpers import write_pair

    return write_pair(tmp_path_factory.mktemp("pair"), size=(24, 20, 12), points=10,
                      moving_points_name="moving_points.fcsv")


@pytest.fixture(scope="module")
def cli_run(cli_files, tmp_path_factory) -> Path:
    """A trained and selected run of ``cli_files`` (in-process, tiny)."""
    from cidir.cli.main import main
    from runs_helpers import CLI_TINY

    files, out = cli_files, tmp_path_factory.mktemp("run") / "run"
    assert main(["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
                 "--fixed-mask", str(files["mask"]), *CLI_TINY]) == 0
    assert main(["select", str(out), "--fixed-labels", str(files["fixed_labels"]),
                 "--moving-labels", str(files["moving_labels"]),
                 "--selection-num-alphas", "5"]) == 0
    return out
