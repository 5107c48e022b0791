"""The training loop's hooks: Checkpoint writes the trainer's state at the right iterations;
EarlyStopping stops after ``patience`` non-improving steps of its running mean."""

from __future__ import annotations

import pytest
import torch

from cidir.config import RunConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.losses import LossTerms
from cidir.training import Checkpoint, EarlyStopping, Trainer, TrainingHook, checkpoint
from cidir.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trainer(iterations: int, checkpoint_every: int = 0) -> Trainer:
    pair = make_synthetic_pair(2, seed=0, size=(24, 20))
    config = RunConfig().with_overrides({
        "model.width": 16, "model.hidden_layers": 2, "model.harmonizer_widths": [8],
        "training.iterations": iterations, "training.batch_size": 64,
        "training.checkpoint_every": checkpoint_every, "training.log_every": 1,
        "objective.calibration_iterations": 5,
    })
    return Trainer(pair.fixed, pair.moving, config, pair.fixed_mask)


@pytest.mark.parametrize(("every", "expected"), [(3, [3, 6]), (0, []), (5, [5]), (7, [])])
def test_checkpoint_iterations(tmp_path, monkeypatch, every, expected):
    """Checkpoint(every) saves the trainer's state at every multiple of ``every`` before the
    last iteration (never when ``every`` is 0; the finished fit is the model file, not a
    checkpoint); the file holds the state of its iteration."""
    saved: list[int] = []
    save = checkpoint.save_checkpoint

    def recording(path, state, extra=None):
        saved.append(int(state["iteration"]))
        save(path, state, extra)

    monkeypatch.setattr(checkpoint, "save_checkpoint", recording)
    trainer = _trainer(7, checkpoint_every=every)
    path = tmp_path / "checkpoint.safetensors"
    states: dict[int, dict[str, torch.Tensor]] = {}

    class Snapshot(TrainingHook):
        def on_step(self, state) -> None:
            states[state.iteration] = {k: v.clone() for k, v in
                                       trainer.transform.model.state_dict().items()}

    result = trainer.run([Snapshot(), Checkpoint(path, every, trainer, {"run_id": "x"})])
    assert saved == expected and result.iterations == 7
    if not expected:
        assert not path.exists()
        return
    state, meta = load_checkpoint(path)
    assert state["iteration"] == expected[-1] and meta["run_id"] == "x"
    for name, value in state["model"].items():
        torch.testing.assert_close(value, states[expected[-1]][name])


def _scripted(trainer: Trainer, totals: list[float]) -> None:
    """Replace the trainer's step by one returning the given total losses in turn."""
    values = iter(totals)

    def step() -> LossTerms:
        total = next(values)
        return LossTerms(torch.tensor(total), {"similarity": total, "total": total})

    trainer.step = step


def test_early_stopping_after_patience_non_improving_steps():
    """window 2, patience 3: running means 5, 4.5, 3.5, 3 (best, step 4), then 3, 3, 3 do not
    improve: the loop stops after step 7 and calls on_end."""
    trainer = _trainer(50)
    _scripted(trainer, [5.0, 4.0, 3.0, 3.0] + [3.0] * 46)
    stopper = EarlyStopping(patience=3, min_delta=0.0, window=2)
    result = trainer.run([stopper])
    assert result.iterations == 7
    assert result.history[-1]["iteration"] == 7


def test_early_stopping_min_delta_and_window():
    """Improvements smaller than min_delta do not count; no stop before the window is full;
    a steadily improving loss never stops."""
    trainer = _trainer(40)
    _scripted(trainer, [10.0 - 0.01 * i for i in range(40)])  # improves by 0.01 per step
    assert trainer.run([EarlyStopping(patience=5, min_delta=0.1, window=1)]).iterations == 6
    trainer = _trainer(40)
    _scripted(trainer, [1.0] * 40)  # flat from the start: stops once the window is full
    assert trainer.run([EarlyStopping(patience=2, min_delta=0.0, window=10)]).iterations == 10
    trainer = _trainer(40)
    _scripted(trainer, [10.0 - 0.5 * i for i in range(40)])
    assert trainer.run([EarlyStopping(patience=3, min_delta=0.1, window=4)]).iterations == 40
