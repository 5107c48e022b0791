"""The engine's levers: mask margin, learning-rate schedule, λ calibration by a pilot fit,
presets, threads and OpenMP waiting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cidir.config import RegularizerTerm, RunConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.errors import InputError
from cidir.geometry import Grid
from cidir.losses import Objective
from cidir.training import Trainer
from cidir.training.calibration import pilot_config
from cidir.training.sampler import candidate_voxels
from cidir.training.schedule import learning_rate_at

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"model.width": 32, "model.harmonizer_widths": [16, 16], "training.batch_size": 512,
         "training.iterations": 12, "objective.calibration_iterations": 8,
         "training.checkpoint_every": 0}


# ------------------------------------------------------------------------ mask margin
def test_candidate_voxels_grow_by_physical_distance():
    grid = Grid.from_shape((1, 1, 21), spacing=(2.0, 1.0, 1.0))  # x steps of 2 mm
    mask = np.zeros((1, 1, 21), np.uint8)
    mask[0, 0, 10] = 1
    assert candidate_voxels(grid, mask, 0.0).tolist() == [10]
    assert candidate_voxels(grid, mask, 4.0).tolist() == [8, 9, 10, 11, 12]  # 2 voxels = 4 mm
    assert candidate_voxels(grid, mask, 3.9).tolist() == [9, 10, 11]


def test_trainer_samples_within_the_margin():
    pair = make_synthetic_pair(3, seed=1)
    inside = int(pair.fixed_mask.array.sum())
    grown = Trainer(pair.fixed, pair.moving, RunConfig().with_overrides(
        {**SMALL, "training.mask_margin_mm": 6.0}), pair.fixed_mask)
    plain = Trainer(pair.fixed, pair.moving, RunConfig().with_overrides(
        {**SMALL, "training.mask_margin_mm": 0.0}), pair.fixed_mask)
    assert len(plain.points) == inside < len(grown.points) < pair.fixed.grid.num_voxels


# ------------------------------------------------------------------------ schedule
def test_cosine_schedule_warms_up_and_decays_to_the_final_fraction():
    t = RunConfig().with_overrides({"training.lr_schedule": "cosine",
                                    "training.warmup_iterations": 10,
                                    "training.iterations": 110,
                                    "training.learning_rate": 1e-3,
                                    "training.final_lr_fraction": 0.1}).training
    lrs = [learning_rate_at(t, i) for i in range(110)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert np.all(np.diff(lrs[:10]) > 0) and np.all(np.diff(lrs[10:]) < 0)
    assert lrs[-1] == pytest.approx(1e-4)
    constant = RunConfig().with_overrides({"training.lr_schedule": "constant"}).training
    assert learning_rate_at(constant, 500) == constant.learning_rate


def test_warmup_is_capped_by_a_short_training_and_must_not_be_negative():
    with pytest.raises(InputError, match="warmup_iterations"):
        RunConfig().with_overrides({"training.warmup_iterations": -1})
    # a 10-step warm-up on a 5-iteration fit: 2 warm-up steps, then the decay
    t = RunConfig().with_overrides({"training.lr_schedule": "cosine",
                                    "training.warmup_iterations": 10,
                                    "training.iterations": 5}).training
    lrs = [learning_rate_at(t, i) for i in range(5)]
    assert lrs[0] < lrs[1] == pytest.approx(t.learning_rate) == lrs[2]
    assert np.all(np.diff(lrs[2:]) < 0)
    assert lrs[4] == pytest.approx(t.final_lr_fraction * t.learning_rate)


def test_stratified_alphas_fill_every_stratum():
    from cidir.training.prior import draw_alphas

    t = RunConfig().with_overrides({"training.alphas_per_iteration": 8,
                                    "training.alpha_sampling": "stratified"}).training
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        alpha = draw_alphas(t, 8, 2, True, gen, torch.device("cpu"))
        for column in alpha.T:
            assert sorted((column * 8).floor().long().tolist()) == list(range(8))


# ------------------------------------------------------------------------ calibration
def test_pilot_config_drops_the_alpha_driven_terms_only():
    config = RunConfig()
    pilot = pilot_config(config)
    assert [t.mapping for t in pilot.objective.regularizers] == ["constant"]
    assert pilot.training.iterations == config.objective.calibration_iterations
    assert pilot.objective.calibration == "none"


def test_objective_scales_multiply_the_alpha_driven_weights():
    config = RunConfig().objective
    alpha = torch.tensor([[0.0], [1.0]])
    plain = Objective(config).weights(alpha)
    scaled = Objective(config, (50.0, 1.0)).weights(alpha)
    assert torch.allclose(scaled[:, 0], 50.0 * plain[:, 0])
    assert torch.allclose(scaled[:, 1], plain[:, 1])
    with pytest.raises(ValueError, match="scales"):
        Objective(config, (1.0,))


def test_calibration_measures_a_positive_lambda_and_survives_a_checkpoint():
    pair = make_synthetic_pair(2, seed=0)
    config = RunConfig().with_overrides(SMALL)
    trainer = Trainer(pair.fixed, pair.moving, config, pair.fixed_mask)
    trainer.run()
    record = trainer.calibration
    assert record and record["similarity_pilot"] < record["similarity_identity"]
    lam = record["terms"]["bending"]["lambda_b"]
    assert lam > 0 and not record["terms"]["bending"]["fallback"]
    assert record["scales"] == [lam, 1.0]
    assert trainer.objective.scales == (lam, 1.0)
    # a trainer restored from the state uses the recorded scales without a new pilot
    restored = Trainer(pair.fixed, pair.moving, config, pair.fixed_mask)
    restored.load_state_dict(trainer.state_dict())
    assert restored.objective.scales == (lam, 1.0)


def test_without_calibration_the_ranges_are_absolute():
    pair = make_synthetic_pair(2, seed=0)
    config = RunConfig().with_overrides({**SMALL, "objective.calibration": "none"})
    trainer = Trainer(pair.fixed, pair.moving, config, pair.fixed_mask)
    trainer.run()
    assert trainer.calibration is None and trainer.objective.scales == (1.0, 1.0)


# ------------------------------------------------------------------------ presets
def test_paper_preset_is_the_first_configuration():
    paper = RunConfig.from_preset("paper")
    assert paper.model.width == 256 and paper.objective.calibration == "none"
    assert paper.objective.regularizers == (RegularizerTerm("bending", 1.0, 1e4, "log", 0),)
    assert paper.training.mask_margin_mm == 0.0
    assert paper.selection == RunConfig().selection  # sections it does not list: defaults
    with pytest.raises(InputError, match="preset"):
        RunConfig.from_preset("nonsense")


def test_cli_precedence_preset_config_options(tmp_path):
    import argparse

    from cidir.cli.config_options import add_config_options, config_from_args

    parser = argparse.ArgumentParser()
    add_config_options(parser, ("model", "objective", "training"))
    file = tmp_path / "c.toml"
    file.write_text("[training]\niterations = 300\n", encoding="utf-8")
    args = parser.parse_args(["--preset", "paper", "--config", str(file), "--model-width", "64"])
    config = config_from_args(args)
    assert config.model.width == 64  # option over preset
    assert config.training.iterations == 300  # file over preset
    assert config.objective.calibration == "none"  # from the preset


# ------------------------------------------------------------------------ threads
def _python(code: str, env: dict[str, str]) -> str:
    src = str(Path(__file__).resolve().parents[1] / "src")
    full = {**{k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}, **env,
            "PYTHONPATH": src}
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_cli_sets_passive_waiting_before_torch_unless_the_user_chose():
    code = "import cidir.cli, os, sys; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    assert _python(code, {}) == "PASSIVE False"
    assert _python(code, {"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE False"


def test_threads_option(tmp_path):
    from cidir.cli.main import build_parser
    from cidir.runtime import available_cores, configure_threads

    args = build_parser().parse_args(["demo", "--out", str(tmp_path), "--threads", "1"])
    assert args.threads == 1
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["demo", "--out", str(tmp_path), "--threads", "0"])
    assert exc.value.code == 2
    import SimpleITK as sitk

    before = torch.get_num_threads(), sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1
        assert configure_threads(None) == available_cores()
    finally:
        torch.set_num_threads(before[0])
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before[1])
