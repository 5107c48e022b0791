"""The training loop's hooks: Checkpoint writes at the right iterations and at the end;
EarlyStopping stops after ``patience`` non-improving steps of its running mean."""

from __future__ import annotations

import pytest
import torch

from cidir.config import RunConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.io import model_store
from cidir.io.model_store import load_model, read_metadata
from cidir.losses import LossTerms
from cidir.training import Checkpoint, EarlyStopping, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trainer(iterations: int, checkpoint_every: int = 0) -> Trainer:
    pair = make_synthetic_pair(2, seed=0, size=(24, 20))
    config = RunConfig().with_overrides({
        "model.width": 16, "model.hidden_layers": 2, "model.harmonizer_widths": [8],
        "training.iterations": iterations, "training.batch_size": 64,
        "training.checkpoint_every": checkpoint_every, "training.log_every": 1,
    })
    return Trainer(pair.fixed, pair.moving, config, pair.fixed_mask)


@pytest.mark.parametrize(("every", "expected"), [(3, [3, 6, 7]), (0, [7]), (5, [5, 7])])
def test_checkpoint_iterations(tmp_path, monkeypatch, every, expected):
    """Checkpoint(every) saves at every multiple of ``every`` and once more at the end (only
    at the end when ``every`` is 0); the file holds the model of its iteration."""
    saved: list[int] = []
    save = model_store.save_model

    def recording(path, transform, config, extra=None):
        saved.append(int(extra["iteration"]))
        save(path, transform, config, extra)

    monkeypatch.setattr(model_store, "save_model", recording)
    trainer = _trainer(7, checkpoint_every=every)
    path = tmp_path / "checkpoint.safetensors"
    result = trainer.run([Checkpoint(path, every)])
    assert saved == expected and result.iterations == 7
    assert read_metadata(path)["iteration"] == "7"
    transform, _ = load_model(path)
    for name, value in transform.model.state_dict().items():
        torch.testing.assert_close(value, result.transform.model.state_dict()[name])


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
