"""Fuzzing the readers through the CLI: every reader (images, label maps, landmarks of each
format, configs, model files, transform files, checkpoints, selection.json) is fed seeded
random truncations and byte changes of a valid file. Each command must end with exit 2, one
line on stderr and no traceback, and write nothing; or, when the changed file happens to be
still valid, exit 0 with a sane output. (cidir has no manifest reader yet: none is fuzzed.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.alignment import write_transform
from cidir.cli.main import main
from cidir.io.landmarks import read_points, write_points
from cidir.runs import fit as fit_module
from runs_helpers import TINY, fit_args, interrupt_at, snapshot, write_pair

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VARIANTS = 16  # per reader: half truncations, half 1-3 changed bytes
FIT_TINY = [*TINY, "--training-iterations", "2", "--training-batch-size", "100"]


def mutations(data: bytes, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(VARIANTS):
        if i % 2 == 0:
            out.append(data[: int(rng.integers(0, len(data)))])
        else:
            changed = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                changed[int(rng.integers(len(changed)))] ^= int(rng.integers(1, 256))
            out.append(bytes(changed))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Valid files of every kind, a fitted and selected run, and an interrupted run."""
    root = tmp_path_factory.mktemp("fuzz")
    files = write_pair(root / "pair")
    run = root / "run"
    assert main(fit_args(files, run)) == 0
    assert main(["select", str(run), "--fixed-labels", str(files["fixed_labels"]),
                 "--moving-labels", str(files["moving_labels"])]) == 0
    interrupted = root / "interrupted"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fit_module, "StopWhen", interrupt_at(3))
        assert main(fit_args(files, interrupted, "--training-iterations", "8",
                             "--training-checkpoint-every", "2")) == 130
    moving = sitk.ReadImage(str(files["moving"]))
    valid = {"nii": root / "m.nii", "mha": root / "m.mha", "nii.gz": files["moving"],
             "labels": root / "l.nii", "config": root / "c.toml", "tfm": root / "init.tfm"}
    sitk.WriteImage(moving, str(valid["nii"]))
    sitk.WriteImage(moving, str(valid["mha"]), useCompression=False)
    sitk.WriteImage(sitk.ReadImage(str(files["moving_labels"])), str(valid["labels"]))
    valid["config"].write_text(
        (run / "config.toml").read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    shift = np.eye(4)
    shift[:3, 3] = (1.0, -2.0, 0.5)
    write_transform(shift, valid["tfm"])
    points = read_points(files["fixed_points"])
    grid = sitk.ReadImage(str(files["fixed"]))
    from cidir.geometry import Grid

    for name in ("p.csv", "p.fcsv", "p.mrk.json", "p.txt", "p_xyz.txt"):
        write_points(root / name, points, grid=Grid.from_sitk(grid))
        valid[name] = root / name
    return {"root": root, "files": files, "run": run, "interrupted": interrupted,
            "valid": valid}


def _command(kind: str, path: Path, world: dict, out: Path) -> list[str]:
    files, run = world["files"], str(world["run"])
    if kind in ("nii", "mha", "nii.gz"):
        return ["apply", run, "--alpha", "0.5", "--image", str(path), "--out", str(out)]
    if kind == "labels":
        return ["apply", run, "--alpha", "0.5", "--labels", str(path), "--out", str(out)]
    if kind.startswith("p"):
        return ["apply", run, "--alpha", "0.5", "--points", str(path), "--out", str(out)]
    fit = ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out)]
    return [*fit, "--config", str(path), *FIT_TINY] if kind == "config" else \
        [*fit, "--init", str(path), *FIT_TINY]


def _check(capfd, argv: list[str], out: Path, watched: Path) -> int:
    """Run one command; exit 2 cleanly with nothing written, or 0 with a sane output."""
    before = snapshot(watched)
    code = main(argv)
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err, captured.err
    if code == 2:
        assert len(captured.err.strip().splitlines()) == 1, captured.err
        assert captured.err.startswith(f"cidir {argv[0]}: error: "), captured.err
        assert not out.exists(), f"{argv}: wrote {out}"
        assert snapshot(watched) == before, f"{argv}: changed {watched}"
        return code
    assert code == 0, captured.err
    if out.suffix == ".csv":
        assert np.isfinite(read_points(out)).all()
    elif out.name.endswith(".nii.gz"):
        image = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
        assert image.shape == (10, 14, 16) and np.isfinite(image).all()
    else:
        assert (out / "model.safetensors").is_file()
    return code


@pytest.mark.parametrize("kind", ["nii", "mha", "nii.gz", "labels", "p.csv", "p.fcsv",
                                  "p.mrk.json", "p.txt", "p_xyz.txt", "config", "tfm"])
def test_fuzz_input_files(capfd, world, tmp_path, kind):
    source = world["valid"][kind]
    data = source.read_bytes()
    codes = []
    for i, variant in enumerate(mutations(data, seed=len(kind) * 1000 + len(data))):
        path = tmp_path / f"v{i}{''.join(source.suffixes)}"
        if kind == "p_xyz.txt":
            path = tmp_path / f"v{i}_xyz.txt"
        path.write_bytes(variant)
        out = tmp_path / (f"o{i}.csv" if kind.startswith("p") else
                          f"o{i}" if kind in ("config", "tfm") else f"o{i}.nii.gz")
        codes.append(_check(capfd, _command(kind, path, world, out), out, world["run"]))
    assert 2 in codes  # most changes are caught


@pytest.mark.parametrize(("kind", "name"), [("model", "model.safetensors"),
                                            ("selection", "selection.json"),
                                            ("checkpoint", "checkpoint")])
def test_fuzz_run_files(capfd, world, tmp_path, kind, name):
    """Files inside a run folder: the model, selection.json, an interrupted fit's checkpoint."""
    source_run = world["interrupted"] if kind == "checkpoint" else world["run"]
    if kind == "checkpoint":
        name = next(source_run.glob(".fit-*/checkpoint.safetensors")).relative_to(source_run)
    data = (source_run / name).read_bytes()
    codes = []
    for i, variant in enumerate(mutations(data, seed=7 + len(data))):
        copy = tmp_path / f"run{i}"
        shutil.copytree(source_run, copy)
        (copy / name).write_bytes(variant)
        out = tmp_path / f"o{i}.nii.gz"
        if kind == "checkpoint":
            argv = ["fit", "--resume", str(copy), "--quiet"]
            before = snapshot(copy)
            code = main(argv)
            err = capfd.readouterr().err
            assert "Traceback" not in err and code in (0, 2), err
            if code == 2:
                assert len(err.strip().splitlines()) == 1, err
                assert snapshot(copy) == before
            else:
                metrics = json.loads((copy / "metrics.json").read_text(encoding="utf-8"))
                assert metrics["iterations"] == 8
            codes.append(code)
            continue
        alpha = [] if kind == "selection" else ["--alpha", "0.5"]
        argv = ["apply", str(copy), *alpha, "--image", str(world["files"]["moving"]),
                "--out", str(out)]
        codes.append(_check(capfd, argv, out, copy))
    assert 2 in codes
