"""The command line's manners: every option's help (meaning, choices, default), -v and
--quiet, RUN/fit.log, and plain progress lines when stderr is not a terminal."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from cidir.cli.config_options import SECTIONS
from cidir.cli.main import build_parser, main
from cidir.config_help import CHOICES, HELP
from cidir.errors import InputError
from runs_helpers import CLI_TINY, interrupt_at

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def _options(sub: argparse.ArgumentParser):
    return [a for a in sub._actions if not isinstance(a, argparse._HelpAction)]


def test_every_option_says_what_it_means_its_choices_and_its_default():
    """Every option of every command has a help text; an enumerated option's help (or its
    metavar) lists every choice; an option with a default value names it."""
    checked, problems = 0, []
    for name, sub in _subparsers().items():
        formatter = sub._get_formatter()
        for action in _options(sub):
            where = f"cidir {name} {'/'.join(action.option_strings) or action.dest}"
            text = (action.help or "") % {"default": action.default, "prog": name}
            if len(text) < 10:
                problems.append(f"{where}: no help")
            if action.choices is not None:
                shown = text + formatter._format_args(action, action.dest)
                missing = [c for c in map(str, action.choices) if c not in shown]
                if missing:
                    problems.append(f"{where}: choices {missing} not in its help")
            if action.option_strings and action.default not in (None, False, [], 0) \
                    and not isinstance(action, argparse._CountAction) \
                    and "default" not in text:
                problems.append(f"{where}: default {action.default!r} not named")
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 150


def test_every_configuration_value_is_explained():
    """Each field of the config dataclasses has a help text, and every enumerated one its
    choices: a value outside them is refused by the config itself."""
    from cidir.config import RunConfig

    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"{section}.{f.name}" in HELP, f"{section}.{f.name} has no help"
    for key, choices in CHOICES.items():
        if key.startswith("objective.regularizers."):
            continue
        for value in choices:
            RunConfig().with_overrides({key: value})
        with pytest.raises(InputError, match=key):
            RunConfig().with_overrides({key: "no-such-choice"})


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "somewhere", "--quiet", "-v"])
    assert exit_info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def _fit_argv(files, out, *extra):
    return ["fit", str(files["fixed"]), str(files["moving"]), "--out", str(out),
            "--fixed-mask", str(files["mask"]),
            *[a for a in CLI_TINY if a != "--quiet"], *extra]


def test_fit_log_and_plain_progress(capsys, cli_files, tmp_path):
    """Without a terminal the fit prints plain progress lines (no carriage returns);
    RUN/fit.log records the grids, the calibration, the loss and the end."""
    run = tmp_path / "run"
    assert main(_fit_argv(cli_files, run)) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    progress = [line for line in err.splitlines() if line.startswith("fit: ")
                and "iterations (" in line]
    assert len(progress) == 10 and progress[-1].startswith("fit: 30/30 iterations (100%)")
    assert "INFO" not in err  # log lines only with -v
    log = (run / "fit.log").read_text(encoding="utf-8")
    for expected in ("started", "fixed grid: size [24, 20, 12]", "calibration: pilot of 5",
                     "bending λ_b =", "iteration 30/30", "training ended at iteration 30/30",
                     "wrote the model"):
        assert expected in log, expected
    assert not list(run.glob(".fit-*"))  # the log moved in with the model


def test_verbose_logs_the_fit_on_stderr_and_quiet_prints_nothing(capsys, cli_files, tmp_path):
    assert main(_fit_argv(cli_files, tmp_path / "loud", "-v")) == 0
    err = capsys.readouterr().err
    assert "INFO calibration: pilot" in err and "INFO iteration 30/30" in err
    assert main(_fit_argv(cli_files, tmp_path / "quiet", "--quiet")) == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "quiet" / "fit.log").is_file()


def test_resume_appends_to_the_fit_log(cli_files, tmp_path, monkeypatch):
    """An interrupted fit's log says so; the resumed fit appends to it."""
    from cidir.runs import fit as fit_module

    run = tmp_path / "run"
    monkeypatch.setattr(fit_module, "StopWhen", interrupt_at(12))
    assert main(_fit_argv(cli_files, run, "--quiet")) == 130
    monkeypatch.undo()
    stage_logs = list(run.glob(".fit-*/fit.log"))
    assert len(stage_logs) == 1
    assert "interrupted at iteration 12/30" in stage_logs[0].read_text(encoding="utf-8")
    assert main(["fit", "--resume", str(run), "--quiet"]) == 0
    log = (run / "fit.log").read_text(encoding="utf-8")
    assert log.count(" started") == 1 and "resumed at iteration 12" in log
    assert log.index("interrupted at iteration") < log.index("resumed at iteration")


def test_fit_log_keeps_the_warnings_of_reading_the_inputs(capsys, cli_files, tmp_path):
    """A mask on another grid than its image is resampled with a warning on stderr while the
    inputs are read, before fit.log exists; the log gets it too (once on the console)."""
    from cidir.geometry import Grid, Image
    from cidir.io.images import read_mask, write_image

    mask = read_mask(cli_files["mask"])
    g = mask.grid
    shifted = Grid(g.size, g.spacing, tuple(o + 1.0 for o in g.origin), g.direction)
    path = tmp_path / "mask_shifted.nii.gz"
    write_image(Image(mask.array.astype("uint8"), shifted, "mask"), path)
    argv = [a if a != str(cli_files["mask"]) else str(path)
            for a in _fit_argv(cli_files, tmp_path / "run")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("resampled onto") == 1
    log = (tmp_path / "run" / "fit.log").read_text(encoding="utf-8")
    assert "WARNING inputs: " in log and "resampled onto" in log
