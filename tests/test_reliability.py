"""Run folders a user can trust: one test per bad input of issue 14's table (the Ctrl-C row
is in test_resume.py, the fuzz test in test_fuzz.py). Each bad input ends with exit 2, one
line on stderr and no traceback, before any training, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.cli.main import main
from cidir.errors import InputError
from cidir.runs import fit as fit_module
from cidir.runs import staging
from cidir.runs.lock import LOCK_NAME
from cidir.runs.preflight import MIN_OVERLAP_FRACTION
from runs_helpers import (
    TINY,
    cidir_process,
    expect_error,
    fit_args,
    select_args,
    snapshot,
    write_pair,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    """A fitted and selected run (in-process, tiny)."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(fit_args(files, out, "--fixed-mask", str(files["mask"]))) == 0
    assert main(select_args(files, out)) == 0
    return out


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a fit reaches training: bad input must be refused before it."""
    def trainer(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(fit_module, "Trainer", trainer)


# ------------------------------------------------------------- row 1: --out unusable
def test_fit_out_is_a_file(capfd, files, tmp_path, no_training):
    out = tmp_path / "run.txt"
    out.write_text("not a folder\n", encoding="utf-8")
    expect_error(capfd, fit_args(files, out), "run.txt", "expected a folder, found a file")
    assert out.read_text(encoding="utf-8") == "not a folder\n"


def test_fit_out_under_a_file(capfd, files, tmp_path, no_training):
    blocker = tmp_path / "blocker"
    blocker.write_text("x", encoding="utf-8")
    expect_error(capfd, fit_args(files, blocker / "run"), "cannot create the folder")


def test_fit_out_not_writable(capfd, files, tmp_path, no_training, monkeypatch):
    """A folder without write permission. As root permission bits do not stop writes, so
    there the permission check is exercised by making os.access say no."""
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.access(parent, os.W_OK):  # root
            from cidir.io import outputs

            monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
        expect_error(capfd, fit_args(files, parent / "run"), "permission denied")
        assert not (parent / "run").exists()
    finally:
        parent.chmod(0o755)


# ------------------------------------------- row 2: --overwrite invalidates derived files
def test_overwrite_removes_everything_derived(capfd, files, tmp_path):
    out = tmp_path / "run"
    assert main(fit_args(files, out, "--fixed-mask", str(files["mask"]), "--init",
                         "moments")) == 0
    assert main(select_args(files, out)) == 0
    for name in ("selection.json", "alpha_table.csv", "init_transform.tfm"):
        assert (out / name).is_file()
    old_id = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["run_id"]
    assert main(fit_args(files, out, "--overwrite", "--training-seed", "3")) == 0
    capfd.readouterr()
    for name in ("selection.json", "alpha_table.csv", "init_transform.tfm"):
        assert not (out / name).exists(), name
    inputs = json.loads((out / "inputs.json").read_text(encoding="utf-8"))
    assert "fixed_mask" not in inputs["inputs"]
    assert inputs["run_id"] != old_id
    assert not list(out.glob(".fit-*")) and not (out / staging.JOURNAL_NAME).exists()
    expect_error(capfd, ["apply", str(out), "--image", str(files["moving"]), "--out",
                         str(tmp_path / "w.nii.gz")], "no selection.json")


def test_failed_overwrite_keeps_the_old_run(capfd, files, run, tmp_path, monkeypatch):
    """The old run stays intact (byte for byte) until the new fit has succeeded."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = snapshot(copy)

    def broken(path, *args, **kwargs):
        raise InputError(f"output {path}: cannot write it (No space left on device)")

    monkeypatch.setattr(fit_module, "save_model", broken)
    expect_error(capfd, fit_args(files, copy, "--overwrite"), "No space left")
    assert snapshot(copy) == before
    monkeypatch.undo()
    assert main(["apply", str(copy), "--image", str(files["moving"]), "--out",
                 str(tmp_path / "w.nii.gz")]) == 0


def test_half_done_switch_is_completed(capfd, files, run, tmp_path, monkeypatch):
    """A process killed while switching a new fit in leaves a journal; the next command
    completes the switch instead of mixing two fits."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    real_finish = staging.finish

    def killed(run_dir):
        if staging.pending(run_dir):
            raise KeyboardInterrupt  # as if killed right after writing the journal

    monkeypatch.setattr(staging, "finish", killed)
    assert main(fit_args(files, copy, "--overwrite", "--training-seed", "5")) == 130
    monkeypatch.setattr(staging, "finish", real_finish)
    assert (copy / staging.JOURNAL_NAME).is_file()
    assert main(["apply", str(copy), "--alpha", "0.5", "--image", str(files["moving"]),
                 "--out", str(tmp_path / "w.nii.gz")]) == 0
    assert not (copy / staging.JOURNAL_NAME).exists() and not list(copy.glob(".fit-*"))
    assert not (copy / "selection.json").exists()
    assert "seed = 5" in (copy / "config.toml").read_text(encoding="utf-8")


# --------------------------------------------------------- row 3: one writer at a time
def test_second_writer_refused_at_once(capfd, files, tmp_path):
    out = tmp_path / "run"
    first = cidir_process(*fit_args(files, out)[:-1], "--training-iterations", "100000",
                          "--quiet")
    try:
        deadline = time.time() + 120
        while not list(out.glob(".fit-*/fit.json")) and time.time() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        start = time.perf_counter()
        expect_error(capfd, fit_args(files, out, "--overwrite"), "in use by process",
                     str(first.pid), "cidir fit since")
        expect_error(capfd, select_args(files, out), "in use by process")
        assert time.perf_counter() - start < 30
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130


def test_stale_lock_is_recovered(capfd, files, tmp_path):
    """A lock left by a killed process (its file remains, the kernel lock is gone)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "here",
                                             "command": "cidir fit", "since": "earlier"}),
                                encoding="utf-8")
    assert main(fit_args(files, out)) == 0
    err = capfd.readouterr().err
    assert "recovered the lock left by process 999999" in err
    assert not (out / LOCK_NAME).exists()


# ------------------------------------------------ row 4: a model file from another fit
def test_model_from_another_fit_refused(capfd, files, run, tmp_path):
    other = tmp_path / "other"
    assert main(fit_args(files, other, "--fixed-mask", str(files["mask"]),
                         "--training-seed", "1")) == 0
    capfd.readouterr()
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.copy(other / "model.safetensors", copy / "model.safetensors")  # same config
    out = tmp_path / "w.nii.gz"
    commands = [
        ["apply", str(copy), "--image", str(files["moving"]), "--out", str(out)],
        ["export", str(copy), "--field", str(tmp_path / "f.nii.gz")],
        select_args(files, copy),
        ["evaluate", str(copy), "--alpha", "0.5", "--out", str(tmp_path / "e.json")],
        ["report", str(copy)],
    ]
    for argv in commands:
        expect_error(capfd, argv, "config.toml", "belongs to another fit")
    assert not out.exists() and not (tmp_path / "f.nii.gz").exists()


def test_selection_from_another_fit_refused(capfd, files, run, tmp_path):
    other = tmp_path / "other"
    assert main(fit_args(files, other, "--training-seed", "1")) == 0
    assert main(select_args(files, other)) == 0
    capfd.readouterr()
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.copy(other / "selection.json", copy / "selection.json")
    expect_error(capfd, ["apply", str(copy), "--image", str(files["moving"]), "--out",
                         str(tmp_path / "w.nii.gz")], "selection.json", "another fit")


# --------------------------------------------- row 5: images that do not overlap
def _moving_variant(files, tmp_path, kind: str):
    image = sitk.ReadImage(str(files["moving"]))
    if kind == "flipped":
        d = np.array(image.GetDirection()).reshape(3, 3)
        image.SetDirection(tuple((d @ np.diag([-1.0, -1.0, 1.0])).ravel()))
    elif kind == "huge_spacing":
        image.SetSpacing((1e6, 1e6, 1e6))
    elif kind == "single_slice":
        image = image[:, :, 4:5]
    path = tmp_path / f"moving_{kind}.nii"
    sitk.WriteImage(image, str(path))
    if kind == "negative_spacing":  # pixdim[1] < 0 in the NIfTI header (ITK flips the axis)
        raw = bytearray(path.read_bytes())
        raw[80:84] = np.float32(-2.0).tobytes()
        path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(("kind", "words"), [
    ("flipped", ("falls inside it", f"at least {100 * MIN_OVERLAP_FRACTION:.0f}%")),
    ("negative_spacing", ("falls inside it",)),
    ("huge_spacing", ("less than one of its voxels",)),
    ("single_slice", ("single slice",)),
])
def test_images_that_do_not_overlap(capfd, files, tmp_path, no_training, kind, words):
    moving = _moving_variant(files, tmp_path, kind)
    out = tmp_path / "run"
    expect_error(capfd, ["fit", str(files["fixed"]), str(moving), "--out", str(out), *TINY],
                 moving.name, *words)
    assert not out.exists()


def test_initial_transform_restores_the_overlap(files, tmp_path):
    """The overlap is judged after the initial transform: moments aligns a shifted image."""
    image = sitk.ReadImage(str(files["moving"]))
    image.SetOrigin([o + 500.0 for o in image.GetOrigin()])
    shifted = tmp_path / "shifted.nii.gz"
    sitk.WriteImage(image, str(shifted))
    base = ["fit", str(files["fixed"]), str(shifted), *TINY]
    assert main([*base, "--out", str(tmp_path / "a")]) == 2
    assert main([*base, "--out", str(tmp_path / "b"), "--init", "moments"]) == 0


# ------------------------------------------------ row 6: output formats nobody writes
@pytest.mark.parametrize(("argv", "words"), [
    (["apply", "{run}", "--image", "{moving}", "--out", "{tmp}/w.xyz"], ("w.xyz", "cannot write")),
    (["apply", "{run}", "--image", "{moving}", "--out", "{tmp}/w.png"], ("w.png",)),
    (["apply", "{run}", "--image", "{moving}", "--out", "{tmp}/w.tif"], ("keep the image's grid",)),
    (["apply", "{run}", "--points", "{points}", "--out", "{tmp}/p.xyz"], ("p.xyz", ".csv")),
    (["apply", "{run}", "--image", "{moving}", "--out", "{tmp}"], ("expected a file name",)),
    (["export", "{run}", "--field", "{tmp}/f.xyz"], ("f.xyz", "cannot write")),
    (["export", "{run}", "--jacobian", "{tmp}/j.jpg"], ("j.jpg",)),
    (["evaluate", "{run}", "--out", "{tmp}"], ("expected a file name",)),
])
def test_output_format_checked_first(capfd, files, run, tmp_path, monkeypatch, argv, words):
    from cidir.runs import commands

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded despite a bad output path")

    monkeypatch.setattr(commands.RunFolder, "load_transform", no_work)
    values = {"run": str(run), "moving": str(files["moving"]), "tmp": str(tmp_path),
              "points": str(files["fixed_points"])}
    expect_error(capfd, [a.format(**values) for a in argv], *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ----------------------------------------------------- row 7: a garbage --init file
@pytest.mark.parametrize("content", [
    b"#Insight Transform File V1.0\nTransform: garbage\nParameters: 1 2\n",
    b"\x00\x01 garbage bytes \xff\xfe",
    b"#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
    b"Parameters: 1 0 0 0 1 0 0 0 1 0 0\nFixedParameters: 0 0 0\n",
])
def test_garbage_init_transform(capfd, files, tmp_path, no_training, content):
    tfm = tmp_path / "init.tfm"
    tfm.write_bytes(content)
    err = expect_error(capfd, fit_args(files, tmp_path / "run", "--init", str(tfm)),
                       "init.tfm", "transform")
    for noise in ("basic_string", "0x", ".cxx", "__pos"):
        assert noise not in err, err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------- row 8: inputs moved after fit
def test_moved_inputs_reported(capfd, tmp_path):
    data = tmp_path / "project" / "data"
    files = write_pair(data)
    out = tmp_path / "project" / "runs" / "run"
    assert main(fit_args(files, out, "--fixed-mask", str(files["mask"]))) == 0
    # the whole project moved: found again through the path relative to the run folder
    shutil.move(tmp_path / "project", tmp_path / "moved")
    moved = tmp_path / "moved" / "runs" / "run"
    assert main(["evaluate", str(moved), "--alpha", "0.5"]) == 0
    capfd.readouterr()
    # the inputs alone moved away: reported with where they were expected and their checksum
    shutil.move(tmp_path / "moved" / "data", tmp_path / "elsewhere")
    err = expect_error(capfd, ["evaluate", str(moved), "--alpha", "0.5"],
                       "input fixed image moved or deleted", "fixed.nii.gz", "sha256")
    expect_error(capfd, ["report", str(moved)], "moved or deleted")
    assert "elsewhere" not in err
    # an input changed in place: reported, not used
    shutil.move(tmp_path / "elsewhere", tmp_path / "moved" / "data")
    moving = tmp_path / "moved" / "data" / "moving.nii.gz"
    image = sitk.ReadImage(str(moving))
    sitk.WriteImage(image * 2.0, str(moving))
    expect_error(capfd, ["evaluate", str(moved), "--alpha", "0.5"], "changed since the fit")


def test_inputs_inside_the_run_travel_with_it(files, tmp_path):
    out = tmp_path / "run"
    inputs = out / "inputs"
    inputs.mkdir(parents=True)
    for name in ("fixed", "moving"):
        shutil.copy(files[name], inputs / f"{name}.nii.gz")
    assert main(["fit", str(inputs / "fixed.nii.gz"), str(inputs / "moving.nii.gz"), "--out",
                 str(out), *TINY]) == 0
    recorded = json.loads((out / "inputs.json").read_text(encoding="utf-8"))["inputs"]
    assert recorded["fixed"]["path"] == "inputs/fixed.nii.gz"
    shutil.move(out, tmp_path / "renamed")
    assert main(["evaluate", str(tmp_path / "renamed"), "--alpha", "0.5"]) == 0


def test_elastix_parameter_file_names_its_field(files, run, tmp_path):
    """elastix opens DeformationFieldFileName relative to transformix's working directory,
    so the file names its field by absolute path and says what to do after a move."""
    param = tmp_path / "out" / "tp.txt"
    assert main(["export", str(run), "--field", str(param), "--format", "elastix"]) == 0
    text = param.read_text(encoding="utf-8")
    field = (tmp_path / "out" / "tp_field.nii.gz").resolve()
    assert f'(DeformationFieldFileName "{field}")' in text
    assert "rerun cidir export or edit that line" in text.replace("\n// ", " ")
    run_id = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["run_id"]
    assert f"// cidir run {run_id}" in text
    assert sitk.ReadImage(str(field)).GetMetaData("descrip").startswith(f"cidir run {run_id}")


# ------------------------------------------------------------------- run identity
def test_every_file_records_its_fit(files, run, tmp_path):
    """The run id and model checksum are in the model, config.toml, every JSON file, the
    report and exported images; CSV files are covered by checksums in the JSON files."""
    from safetensors import safe_open

    from cidir.runs.identity import sha256_file

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["evaluate", str(copy)]) == 0
    assert main(["report", str(copy)]) == 0
    with safe_open(str(copy / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    run_id, sha = meta["run_id"], meta["sha256"]
    config = (copy / "config.toml").read_text(encoding="utf-8")
    assert config.splitlines()[0] == f"# cidir run {run_id}"
    for name in ("inputs.json", "metrics.json", "selection.json", "evaluation.json"):
        data = json.loads((copy / name).read_text(encoding="utf-8"))
        assert (data["run_id"], data["model_sha256"]) == (run_id, sha), name
    selection = json.loads((copy / "selection.json").read_text(encoding="utf-8"))
    assert selection["files"]["alpha_table.csv"] == sha256_file(copy / "alpha_table.csv")
    metrics = json.loads((copy / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["files"]["loss.csv"] == sha256_file(copy / "loss.csv")
    report = (copy / "report.html").read_text(encoding="utf-8")
    assert f"<meta name='cidir-run-id' content='{run_id}'>" in report
    for name in ("w.mha", "w.nii.gz"):
        assert main(["apply", str(copy), "--image", str(files["moving"]), "--out",
                     str(tmp_path / name)]) == 0
    assert sitk.ReadImage(str(tmp_path / "w.mha")).GetMetaData("cidir_run_id") == run_id
    assert run_id in sitk.ReadImage(str(tmp_path / "w.nii.gz")).GetMetaData("descrip")
    # a CSV of another fit (or edited) is refused through its recorded checksum
    with open(copy / "loss.csv", "a", encoding="utf-8") as f:
        f.write("999,0,0,0,0\n")
    assert main(["report", str(copy)]) == 2
