"""Run configuration: defaults, TOML round trips, errors that name the key, overrides."""

from __future__ import annotations

import dataclasses

import pytest

from cidir.config import ModelConfig, ObjectiveConfig, RegularizerTerm, RunConfig
from cidir.errors import InputError


def test_defaults_validate():
    """The default config is valid and matches the method's defaults."""
    config = RunConfig().validate()
    assert config.model.kind == "cidir" and config.model.hidden_layers == 3
    assert config.model.width == 128 and config.model.harmonizer_widths == (128, 64, 32)
    assert config.num_conditions == 1
    assert config.objective.calibration == "pilot" and config.training.mask_margin_mm == 0.0
    assert [t.mapping for t in config.objective.regularizers] == ["log", "constant"]


def test_toml_round_trip_defaults():
    """to_toml → from_toml gives an equal config."""
    config = RunConfig()
    assert RunConfig.from_toml(config.to_toml()) == config


def test_toml_round_trip_non_defaults():
    """A config with every section changed and several regularizers survives the round trip,
    regularizers written as a TOML list of tables."""
    config = RunConfig().with_overrides({
        "model.kind": "siren",
        "model.width": 64,
        "model.harmonizer_widths": [16, 8],
        "model.shared_activation": True,
        "objective.similarity": "mse",
        "objective.regularizers": [
            {"name": "bending", "lambda_min": 0.1, "lambda_max": 100.0, "mapping": "log",
             "alpha_index": 0},
            {"name": "antifolding", "lambda_max": 5.0, "mapping": "constant",
             "alpha_index": 1},
        ],
        "training.iterations": 20,
        "training.alpha_prior": "fixed",
        "selection.num_alphas": 5,
    })
    text = config.to_toml()
    assert text.count("[[objective.regularizers]]") == 2
    back = RunConfig.from_toml(text)
    assert back == config
    assert back.objective.regularizers[1] == RegularizerTerm("antifolding", 1.0, 5.0,
                                                             "constant", 1)
    assert back.model.harmonizer_widths == (16, 8)


def test_regularizers_from_toml_tables():
    """[[objective.regularizers]] tables given by hand are read in order with defaults."""
    text = """
[[objective.regularizers]]
name = "jacobian"
lambda_max = 3.0

[[objective.regularizers]]
name = "hyperelastic"
mapping = "linear"
alpha_index = 2
"""
    config = RunConfig.from_toml(text)
    terms = config.objective.regularizers
    assert [t.name for t in terms] == ["jacobian", "hyperelastic"]
    assert terms[0].lambda_max == 3.0 and terms[0].mapping == "log"
    assert terms[1].alpha_index == 2
    assert config.num_conditions == 3
    assert RunConfig.from_toml(config.to_toml()) == config


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[model]\nwidht = 64\n", "widht"),
        ("[bogus]\nx = 1\n", "bogus"),
        ("[[objective.regularizers]]\nname = \"bending\"\nweight = 2.0\n", "weight"),
        ("iterations = 10\n", "iterations"),
    ],
)
def test_unknown_keys_raise(text, key):
    """Unknown keys (in any section, in regularizer tables, at top level) raise InputError
    naming the key."""
    with pytest.raises(InputError, match=key):
        RunConfig.from_toml(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[model]\nwidth = \"wide\"\n", "model.width"),
        ("[model]\nwidth = 3.5\n", "model.width"),
        ("[model]\nshared_activation = 1\n", "model.shared_activation"),
        ("[model]\nkind = 3\n", "model.kind"),
        ("[model]\nharmonizer_widths = 8\n", "model.harmonizer_widths"),
        ("[training]\nlearning_rate = \"fast\"\n", "training.learning_rate"),
        ("[training]\nlearning_rate = true\n", "training.learning_rate"),
        ("[training]\nlearning_rate = nan\n", "training.learning_rate"),
        ("model = 3\n", "model"),
    ],
)
def test_wrong_types_raise(text, key):
    """Wrong types raise InputError naming the dotted key."""
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        RunConfig.from_toml(text)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"model.kind": "transformer"}, "model.kind"),
        ({"model.width": 0}, "model.width"),
        ({"model.omega_first": -30.0}, "model.omega_first"),
        ({"model.output_init_scale": -1e-3}, "model.output_init_scale"),
        ({"objective.regularizer_fraction": 0.0}, "objective.regularizer_fraction"),
        ({"objective.similarity": "ssd"}, "objective.similarity"),
        ({"objective.hyperelastic_area": -1.0}, "objective.hyperelastic_area"),
        ({"objective.regularizers": [{"name": "tv"}]}, "objective.regularizers.name"),
        ({"objective.regularizers": [{"mapping": "cubic"}]}, "objective.regularizers.mapping"),
        ({"objective.regularizers": [{"lambda_min": 0.0}]}, "objective.regularizers.lambda_min"),
        ({"objective.regularizers": [{"lambda_min": 5.0, "lambda_max": 1.0}]}, "lambda_min"),
        ({"objective.regularizers": [{"alpha_index": -1}]}, "alpha_index"),
        ({"training.alpha_low": 1.5}, "training.alpha_low"),
        ({"training.endpoint_probability": -0.1}, "training.endpoint_probability"),
        ({"training.iterations": 0}, "training.iterations"),
        ({"training.learning_rate": 0.0}, "training.learning_rate"),
        ({"training.alpha_prior": "beta"}, "training.alpha_prior"),
        ({"training.alpha_low": 0.8, "training.alpha_high": 0.2}, "alpha_low"),
        ({"training.alphas_per_iteration": 20, "training.batch_size": 10},
         "alphas_per_iteration"),
        ({"selection.num_alphas": 1}, "selection.num_alphas"),
    ],
)
def test_out_of_range_values_raise(override, key):
    """Out-of-range values raise InputError naming the key."""
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        RunConfig().with_overrides(override)


def test_with_overrides_nested():
    """Dotted keys replace nested values and leave the rest; the original is unchanged;
    integral floats and numeric strings are accepted for ints."""
    base = RunConfig()
    config = base.with_overrides({"training.iterations": 500, "model.width": 64.0,
                                  "training.batch_size": "128",
                                  "objective.hyperelastic_area": 0.5})
    assert config.training.iterations == 500
    assert config.model.width == 64 and isinstance(config.model.width, int)
    assert config.training.batch_size == 128
    assert config.objective.hyperelastic_area == 0.5
    assert config.training.learning_rate == base.training.learning_rate
    assert base.training.iterations == RunConfig().training.iterations
    assert dataclasses.replace(config.training, iterations=base.training.iterations,
                               batch_size=base.training.batch_size) == base.training


@pytest.mark.parametrize(
    ("key", "name"),
    [("training.iteratons", "iteratons"), ("trainng.iterations", "trainng"),
     ("training.iterations.value", "iterations"), ("model", "model")],
)
def test_with_overrides_rejects_unknown(key, name):
    """Unknown sections and keys in overrides raise InputError naming them."""
    with pytest.raises(InputError, match=name):
        RunConfig().with_overrides({key: 1})


def test_num_conditions_and_derivative_order():
    """num_conditions = 1 + the largest alpha_index; derivative order 2 with bending, 1 with
    first-order terms, 0 without regularizers."""
    jac = RegularizerTerm("jacobian")
    bend = RegularizerTerm("bending", alpha_index=2)
    assert ObjectiveConfig(regularizers=(jac,)).derivative_order == 1
    assert ObjectiveConfig(regularizers=(jac, bend)).derivative_order == 2
    assert ObjectiveConfig(regularizers=()).derivative_order == 0
    assert ObjectiveConfig(regularizers=()).num_conditions == 1
    assert ObjectiveConfig(regularizers=(jac, bend)).num_conditions == 3
    hyper = RegularizerTerm("hyperelastic", alpha_index=1)
    config = RunConfig(objective=ObjectiveConfig(regularizers=(jac, hyper)))
    assert config.num_conditions == 2
    assert config.objective.derivative_order == 1


def test_invalid_toml_and_missing_file(tmp_path):
    """Unparsable TOML and a missing file raise InputError naming the source."""
    with pytest.raises(InputError, match="my.toml"):
        RunConfig.from_toml("[model\nwidth = 1", source="my.toml")
    with pytest.raises(InputError, match="nope.toml"):
        RunConfig.load(tmp_path / "nope.toml")
    path = tmp_path / "run.toml"
    path.write_text(RunConfig().with_overrides({"model.width": 48}).to_toml())
    assert RunConfig.load(path).model.width == 48


def test_model_config_validate():
    """ModelConfig.validate on its own refuses bad values."""
    with pytest.raises(InputError, match="model.harmonizer_widths"):
        ModelConfig(harmonizer_widths=(16, 0)).validate()
