"""Interruption and resume: Ctrl-C ends a fit cleanly on its own line with a checkpoint, and
``cidir fit --resume RUN`` continues it to the same final model as an uninterrupted fit with
the same seed, after SIGINT and after kill -9 (issue 14, row "Ctrl-C during fit")."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from cidir.cli.main import main
from cidir.config import RunConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.errors import InputError
from cidir.runs import fit as fit_module
from cidir.training import StopWhen, Trainer
from cidir.training.checkpoint import load_checkpoint, save_checkpoint
from runs_helpers import (
    TINY,
    cidir_process,
    expect_error,
    fit_args,
    interrupt_at,
    write_pair,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# long enough that a signal sent at the first checkpoint lands mid-fit (a few seconds)
LONG = ["--training-iterations", "400", "--training-checkpoint-every", "20"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture(scope="module")
def reference(files, tmp_path_factory) -> Path:
    """An uninterrupted fit with the same options, in a subprocess like the others."""
    out = tmp_path_factory.mktemp("ref") / "run"
    process = cidir_process(*fit_args(files, out, *LONG))
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out


def _wait_for_checkpoint(out: Path, process, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not list(out.glob(".fit-*/checkpoint.safetensors")):
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.01)


def _assert_same_model(a: Path, b: Path) -> None:
    ta, tb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert ta.keys() == tb.keys()
    for name in ta:
        assert torch.equal(ta[name], tb[name]), name
    meta = []
    for run in (a, b):
        with safe_open(str(run / "model.safetensors"), framework="pt") as f:
            meta.append(f.metadata())
    assert meta[0]["sha256"] == meta[1]["sha256"]
    assert meta[0]["run_id"] != meta[1]["run_id"]  # two fits, one result

    def losses(run: Path) -> list[str]:  # loss.csv without its timing column
        rows = (run / "loss.csv").read_text(encoding="utf-8").splitlines()
        return [",".join(v for i, v in enumerate(r.split(",")) if i != 1) for r in rows]

    assert losses(a) == losses(b)


def test_sigint_saves_checkpoint_and_resume_matches(files, reference, tmp_path, capfd):
    out = tmp_path / "run"
    argv = [a for a in fit_args(files, out, *LONG) if a != "--quiet"]  # with the progress bar
    process = cidir_process(*argv)
    _wait_for_checkpoint(out, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    last = err.rstrip("\n").split("\n")[-1]  # the bar's line was ended first
    assert last.startswith("cidir fit: interrupted at iteration "), err
    assert last.endswith(f"/400; resume with: cidir fit --resume {out}"), err
    assert "Traceback" not in err
    # nothing that looks complete: no model; commands say how to continue
    assert not (out / "model.safetensors").exists()
    expect_error(capfd, ["apply", str(out), "--alpha", "0.5", "--image", str(files["moving"]),
                         "--out", str(tmp_path / "w.nii.gz")], "interrupted", "--resume")
    expect_error(capfd, fit_args(files, out), "interrupted", "--resume", "--overwrite")
    resume = cidir_process("fit", "--resume", str(out), "--quiet")
    _, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    _assert_same_model(out, reference)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["iterations"] == 400 and len(metrics["resumed_at"]) == 1
    assert not list(out.glob(".fit-*"))


def test_kill9_then_resume_matches(files, reference, tmp_path):
    out = tmp_path / "run"
    process = cidir_process(*fit_args(files, out, *LONG))
    _wait_for_checkpoint(out, process)
    process.kill()  # SIGKILL: no handler runs, the lock file stays
    process.communicate(timeout=60)
    assert (out / ".cidir.lock").is_file() and not (out / "model.safetensors").exists()
    resume = cidir_process("fit", "--resume", str(out), "--quiet")
    _, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    assert "recovered the lock" in err
    _assert_same_model(out, reference)


def test_trainer_state_round_trip(tmp_path):
    """In-process: training 12 iterations equals 5, checkpoint to disk, load into a fresh
    trainer, 7 more (model, Adam state, Generator, history all restored)."""
    pair = make_synthetic_pair(2, seed=1, size=(20, 18))
    config = RunConfig().with_overrides({
        "model.width": 16, "model.hidden_layers": 2, "model.harmonizer_widths": [8],
        "training.iterations": 12, "training.batch_size": 128, "training.log_every": 2,
        "objective.calibration_iterations": 6})
    whole = Trainer(pair.fixed, pair.moving, config)
    whole.run()
    first = Trainer(pair.fixed, pair.moving, config)
    first.run([StopWhen(lambda: first.iteration >= 5)])  # as a signal stops it
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, first.state_dict(), {"iterations": "12"})
    second = Trainer(pair.fixed, pair.moving, config)
    state, meta = load_checkpoint(path)
    assert meta["iterations"] == "12" and state["iteration"] == 5
    second.load_state_dict(state)
    second.run()
    for a, b in zip(whole.transform.model.parameters(), second.transform.model.parameters(),
                    strict=True):
        assert torch.equal(a, b)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in whole.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in second.history]
    # an altered checkpoint is refused, never resumed from
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="checksum"):
        load_checkpoint(path)


def test_resume_refusals(capfd, files, tmp_path):
    out = tmp_path / "run"
    expect_error(capfd, ["fit", "--resume", str(out)], "no such run folder")
    assert main(fit_args(files, out)) == 0
    expect_error(capfd, ["fit", "--resume", str(out)], "nothing to resume", "finished fit")
    expect_error(capfd, ["fit", "--resume", str(out), "--training-iterations", "9"],
                 "takes only --device, --threads and the output options", "--training-iterations")
    expect_error(capfd, ["fit", str(files["fixed"]), str(files["moving"])], "--out RUN")


def test_resume_refuses_changed_inputs(capfd, tmp_path, monkeypatch):
    files = write_pair(tmp_path / "data")
    out = tmp_path / "run"
    monkeypatch.setattr(fit_module, "StopWhen", interrupt_at(5))  # Ctrl-C at iteration 5
    assert main(fit_args(files, out)) == 130
    assert capfd.readouterr().err.strip().endswith(f"iteration 5/20; resume with: cidir fit "
                                                   f"--resume {out}")
    shutil.copy(files["fixed"], files["moving"])  # the moving image changed since
    expect_error(capfd, ["fit", "--resume", str(out)], "moving image", "changed since the fit")
    assert list(out.glob(".fit-*/checkpoint.safetensors"))  # still resumable once restored


def test_tiny_options_train_without_periodic_checkpoints(files, tmp_path):
    """The default periodic checkpoint (every 200 iterations) never fires on a short fit,
    and a finished fit leaves no checkpoint or staging folder behind."""
    assert "--training-checkpoint-every" not in TINY
    out = tmp_path / "run"
    assert main(fit_args(files, out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "config.toml", "fit.log", "inputs.json", "loss.csv", "metrics.json", "model.safetensors"]
