"""The tools around a choice of α: the frozen (folded) network at one α, the α-uncertainty
map over the tied α, the surface rule, TRE ties, and ``export --uncertainty``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cidir.cli.main import main
from cidir.config import SelectionConfig
from cidir.fields import ConditionedTransform, alpha_spread_map
from cidir.geometry import Grid, Image
from cidir.geometry.kinematics import Jet, MapJet
from cidir.models import DeformationModel
from cidir.selection.alpha_search import AlphaRow, choose_by_tre
from cidir.selection.surface import search_surface, signed_distance
from runs_helpers import expect_error, snapshot
from test_models import _config, _perturb

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRID = Grid.from_shape((8, 10, 12), (2.0, 2.5, 3.0), (-10.0, 5.0, 2.0))


def _transform(seed: int = 0, kind: str = "cidir", scale: float = 0.3) -> ConditionedTransform:
    torch.manual_seed(seed)
    model = _perturb(DeformationModel(_config(kind), 3), seed, scale)
    return ConditionedTransform(model, GRID)


@pytest.mark.parametrize("alpha", [0.0, 0.37, 1.0])
def test_frozen_network_is_the_same_function(alpha):
    """The folded network gives the modulated network's u, ∇u and ∇²u (float32 rounding)."""
    transform = _transform()
    at = transform.alpha_tensor(alpha)
    frozen = transform.frozen(at)
    world = torch.as_tensor(GRID.world_points()[::7], dtype=torch.float32)
    with torch.no_grad():
        full, folded = transform.map_jet(world, at, 2), frozen.map_jet(world, at, 2)
    assert frozen.model.harmonizer is None and transform.model.harmonizer is not None
    assert torch.allclose(folded.value, full.value, atol=1e-4)
    assert torch.allclose(folded.u.jacobian, full.u.jacobian, atol=1e-4)
    assert torch.allclose(folded.u.hessian, full.u.hessian, atol=1e-4, rtol=1e-3)
    assert float((full.value - world).abs().max()) > 1e-2  # a non-trivial field


def test_frozen_leaves_the_model_and_the_rng_alone():
    transform = _transform()
    before = {k: v.clone() for k, v in transform.model.state_dict().items()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    transform.frozen(0.5)
    assert torch.equal(torch.rand(3), expected)
    after = transform.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    plain = _transform(kind="siren")
    assert plain.frozen(0.5) is plain


def test_spread_is_zero_where_the_tied_alphas_agree():
    """One tied α, or a network that does not depend on α (harmonizer head at zero): 0."""
    transform = _transform(scale=0.0)  # a = b = 1, c = d = 0 for every α
    assert np.all(alpha_spread_map(transform, [0.2, 0.5, 0.9]) == 0.0)
    varying = _transform()
    assert np.all(alpha_spread_map(varying, [0.4]) == 0.0)


def test_spread_is_the_largest_pairwise_distance():
    transform = _transform()
    alphas = [0.1, 0.5, 0.8]
    mask = np.zeros(GRID.shape, bool)
    mask[2:5, 3:6, 4:9] = True
    spread = alpha_spread_map(transform, alphas, mask=mask)
    assert np.isnan(spread[~mask]).all()
    flat = np.flatnonzero(mask)
    mapped = [transform.map_points(GRID.world_points(flat), a) for a in alphas]
    brute = np.max([np.linalg.norm(mapped[i] - mapped[j], axis=1)
                    for i in range(3) for j in range(i + 1, 3)], axis=0)
    assert np.allclose(spread.reshape(-1)[flat], brute, atol=1e-3)
    assert brute.max() > 0.01


def test_signed_distance_of_a_ball():
    grid = Grid.from_shape((40, 40, 40))
    zyx = np.stack(np.meshgrid(*[np.arange(40)] * 3, indexing="ij"), -1)
    radius = np.linalg.norm(zyx - 20.0, axis=-1)
    labels = Image((radius <= 10).astype(np.int16), grid, "ball")
    full, box = signed_distance(labels, 1, clamp=8.0)
    near = np.abs(radius - 10) < 3
    error = np.abs(full[near] - (radius[near] - 10.5))  # the digital ball's boundary: r ≈ 10.5
    assert error.mean() < 0.5 and error.max() < 1.0  # lattice effects: up to a voxel
    assert (full[radius <= 10] < 0).all() and (full[radius > 10] > 0).all()
    assert full[radius > 25].min() == 8.0 and full[radius < 1].max() == -8.0
    # the box: the ball's voxels 10..30 grown by the clamp + 1 = 9 voxels, clipped to the grid
    assert box.grid.origin == (1.0, 1.0, 1.0) and box.array.shape == (39, 39, 39)
    assert np.array_equal(box.array, full[1:, 1:, 1:])


class _Shift:
    """A stand-in transform: φ(x; α) = x + (8 α mm, 0, 0), identity Jacobian."""

    num_conditions = 1

    def __init__(self, grid: Grid, alpha: float | None = None) -> None:
        self.grid, self.alpha, self.device = grid, alpha, torch.device("cpu")

    def alpha_tensor(self, a: float) -> torch.Tensor:
        return torch.tensor([[float(a)]])

    def frozen(self, at: torch.Tensor) -> _Shift:
        return _Shift(self.grid, float(at))

    def map_world(self, world: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        return world + torch.tensor([8.0 * self.alpha, 0.0, 0.0])

    def map_jet(self, world: torch.Tensor, at: torch.Tensor, order: int = 0) -> MapJet:
        zero = torch.zeros(len(world), 3, 3)  # ∇u = 0: det ∇φ = 1
        return MapJet(self.map_world(world, at), Jet(world, zero, None), 1.0)


def test_surface_rule_finds_a_known_shift():
    """Moving labels = fixed labels moved by +3.2 mm in x: φ(x) = x + 8α aligns them at
    α = 0.4; the surface score is ~0 there, rises on both sides, and the choice is 0.4 (or a
    tie of it within the error)."""
    grid = Grid.from_shape((20, 30, 40), (1.0, 1.0, 1.5))
    xyz = grid.world_points().reshape(grid.shape + (3,))
    centre = np.array([20.0, 15.0, 15.0])
    fixed = (np.linalg.norm((xyz - centre) / [9, 7, 6], axis=-1) <= 1).astype(np.int16)
    moved = (np.linalg.norm((xyz - centre - [3.2, 0, 0]) / [9, 7, 6], axis=-1) <= 1)
    result = search_surface(_Shift(grid), Image(fixed, grid, "f"),  # type: ignore[arg-type]
                            Image(moved.astype(np.int16), grid, "m"),
                            SelectionConfig(num_alphas=11, region_margin_mm=4.0))
    scores = [r.surface_mm for r in result.rows]
    assert int(np.argmin(scores)) == 4 and scores[4] < 0.3
    # a shift of s along x moves the boundary by s·|n_x|: about 0.4 s on average here
    assert np.all(np.diff(scores[:5]) < 0) and np.all(np.diff(scores[4:]) > 0)
    assert scores[0] > 1.0 and scores[-1] > 1.5
    assert result.alpha == pytest.approx(0.4, abs=0.11) and 4 in result.tied
    assert result.rule == "surface" and result.rows[4].folding_percent == 0.0


def test_tre_ties_are_paired_over_landmarks():
    rows = [AlphaRow(alpha=a, dice=None, dice_se=None, folding_percent=0.0)
            for a in (0.0, 0.5, 1.0)]
    base = np.linspace(1.0, 2.0, 20)
    errors = [base + 0.001 * np.sin(np.arange(20)), base, base + 0.5]
    index, tied = choose_by_tre(rows, errors)
    assert index == 1 and tied == [0, 1]


def test_export_uncertainty(cli_run, tmp_path, capfd):
    out = tmp_path / "u.nii.gz"
    assert main(["export", str(cli_run), "--uncertainty", str(out), "--json"]) == 0
    data = json.loads(capfd.readouterr().out)
    summary = json.loads((cli_run / "uncertainty.json").read_text(encoding="utf-8"))
    selection = json.loads((cli_run / "selection.json").read_text(encoding="utf-8"))
    assert summary["tied_alphas"] == selection["tied_alphas"] == data["uncertainty"]["tied_alphas"]
    assert selection["alpha"] in selection["tied_alphas"]
    import SimpleITK as sitk

    # read as written (the reader of inputs refuses a constant image: all tied α may agree)
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert array.min() >= 0 and np.isfinite(array).all()
    assert summary["max_mm"] == pytest.approx(float(array[_mask(cli_run)].max()), rel=1e-5)


def _mask(run: Path) -> np.ndarray:
    from cidir.io.images import read_mask
    from cidir.runs.folder import RunFolder

    path = RunFolder(run).input_path("fixed_mask")
    assert path is not None
    return read_mask(path).array > 0


def test_export_uncertainty_needs_a_selection(cli_files, tmp_path, capfd):
    from runs_helpers import CLI_TINY

    run = tmp_path / "run"
    assert main(["fit", str(cli_files["fixed"]), str(cli_files["moving"]), "--out", str(run),
                 *CLI_TINY]) == 0
    before = snapshot(run)
    expect_error(capfd, ["export", str(run), "--uncertainty", str(tmp_path / "u.nii.gz")],
                 "cidir select")
    assert snapshot(run) == before and not (tmp_path / "u.nii.gz").exists()


def test_cli_select_surface_and_the_tradeoff_columns(cli_run, cli_files, capfd):
    assert main(["select", str(cli_run), "--rule", "surface", "--fixed-labels",
                 str(cli_files["fixed_labels"]), "--moving-labels",
                 str(cli_files["moving_labels"]), "--quiet"]) == 0
    selection = json.loads((cli_run / "selection.json").read_text(encoding="utf-8"))
    assert selection["rule"] == "surface" and selection["surface_mm"] >= 0
    header = (cli_run / "alpha_table.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "surface_mm" in header and "std_log_jacobian" in header
    assert main(["report", str(cli_run), "--quiet"]) == 0
    text = (cli_run / "report.html").read_text(encoding="utf-8")
    assert "boundary error (mm)" in text and "tradeoff.png" in text
    assert "uncertainty.png" in text
    expect_error(capfd, ["select", str(cli_run), "--rule", "surface"], "--fixed-labels")
