"""What every configuration value means, with its units: the help of the generated
command-line options (``--section-name``) and of the TOML keys (``[section] name``).

One entry per field of the config dataclasses (a test checks that none is missing); the
choices of enumerated values and the defaults are added from :mod:`cidir.config` where the
help is shown, so they are written nowhere else.
"""

from __future__ import annotations

from cidir.config import (
    ALPHA_SAMPLINGS,
    CALIBRATIONS,
    LR_SCHEDULES,
    MAPPINGS,
    MODEL_KINDS,
    PRIORS,
    REGULARIZERS,
    SIMILARITIES,
)

#: "section.name" -> the choices of an enumerated value
CHOICES: dict[str, tuple[str, ...]] = {
    "model.kind": MODEL_KINDS,
    "objective.similarity": SIMILARITIES,
    "objective.calibration": CALIBRATIONS,
    "objective.regularizers.name": REGULARIZERS,
    "objective.regularizers.mapping": MAPPINGS,
    "training.lr_schedule": LR_SCHEDULES,
    "training.alpha_prior": PRIORS,
    "training.alpha_sampling": ALPHA_SAMPLINGS,
}

#: "section.name" -> what the value means (units in the text)
HELP: dict[str, str] = {
    # model
    "model.kind": "the deformation network: cidir (sine activations a·sin(b·x + c) + d whose "
                  "a, b, c, d the harmonizer computes from α), siren (the IDIR baseline, one "
                  "fixed regularization weight), relu (a ReLU MLP baseline)",
    "model.hidden_layers": "hidden layers of the MLP",
    "model.width": "neurons per hidden layer of the MLP",
    "model.omega_first": "SIREN frequency ω₀ of the first layer (on network coordinates, "
                         "the fixed image's world box scaled to [-1, 1])",
    "model.omega_hidden": "SIREN frequency of the other hidden layers",
    "model.shared_activation": "one (a, b, c, d) for all layers instead of one per layer",
    "model.harmonizer_widths": "hidden layer widths of the harmonizer MLP α → (a, b, c, d)",
    "model.output_init_scale": "scale of the output layer's initial weights (the initial "
                               "displacement ≈ 0 mm)",
    # objective
    "objective.similarity": "image similarity: ncc (global normalized cross-correlation, "
                            "same modality), mse (mean squared intensity difference, same "
                            "intensity scale), mi (Parzen-window mutual information, any "
                            "modalities: MR ↔ CT, T1 ↔ T2)",
    "objective.mi_bins": "histogram bins per image of the mi similarity (Gaussian kernels "
                         "half a bin wide over each batch's intensity range)",
    "objective.regularizers": "the regularizers and their weight ranges λ(α)",
    "objective.regularizer_fraction": "fraction of each batch's points where the "
                                      "regularizers (network derivatives) are evaluated, "
                                      "in (0, 1]",
    "objective.hyperelastic_length": "weight of the length term of the hyperelastic "
                                     "regularizer",
    "objective.hyperelastic_area": "weight of the area term of the hyperelastic regularizer",
    "objective.hyperelastic_volume": "weight of the volume term of the hyperelastic "
                                     "regularizer",
    "objective.calibration": "how the λ ranges are scaled to the pair: none (λ_min, λ_max "
                             "as written), pilot (a short fit without the α-driven terms "
                             "measures the pair's λ_b; the ranges become multiples of it)",
    "objective.calibration_iterations": "Adam iterations of the calibration pilot fit",
    # training
    "training.iterations": "Adam iterations of the fit",
    "training.batch_size": "points drawn per iteration (inside the fixed mask)",
    "training.learning_rate": "Adam learning rate (peak of the schedule)",
    "training.lr_schedule": "learning-rate schedule: constant, or cosine (linear warm-up, "
                            "then cosine decay to final_lr_fraction × learning_rate)",
    "training.warmup_iterations": "iterations of linear learning-rate warm-up (cosine "
                                  "schedule; at most half the iterations)",
    "training.final_lr_fraction": "the cosine schedule's last learning rate, as a fraction "
                                  "of learning_rate, in [0, 1]",
    "training.mask_margin_mm": "training points are drawn in the fixed mask grown by this "
                               "distance (mm)",
    "training.alpha_prior": "distribution of α during training: uniform on [alpha_low, "
                            "alpha_high], or fixed at alpha_fixed",
    "training.alpha_low": "lower end of the uniform α prior, in [0, 1]",
    "training.alpha_high": "upper end of the uniform α prior, in [0, 1]",
    "training.alpha_fixed": "α of the fixed prior and of the siren / relu baselines, "
                            "in [0, 1]",
    "training.endpoint_probability": "chance that a drawn α is exactly alpha_low or "
                                     "alpha_high, in [0, 1]",
    "training.alphas_per_iteration": "α values drawn per iteration (the batch is split "
                                     "between them)",
    "training.alpha_sampling": "how one iteration's α are drawn: random (independent), or "
                               "stratified (one per 1/alphas_per_iteration stratum)",
    "training.seed": "random seed of the initialization and of the point and α draws (same "
                     "seed and device: same model)",
    "training.checkpoint_every": "iterations between checkpoints for --resume (0: only on "
                                 "Ctrl-C)",
    "training.log_every": "iterations between rows of loss.csv",
    # selection
    "selection.num_alphas": "α grid size: 0, 1/(n−1), …, 1 (a model conditioned on several "
                            "hyperparameters: the finest step of its search, 1/(n−1))",
    "selection.coarse_alphas": "a model conditioned on several hyperparameters: values per "
                               "axis of the first product grid, refined around the best point "
                               "by halving the step",
    "selection.sample_points": "voxels of the labels' region where Dice is estimated per α "
                               "(rule surface: near the label boundaries; rule lcurve: of "
                               "the fit's mask, where the similarity is)",
    "selection.folding_points": "of those, the voxels where det J is evaluated (folding %; "
                                "rule lcurve: and the regularizer energy)",
    "selection.region_margin_mm": "margin (mm) around the labels where the points are drawn "
                                  "(rule surface: on either side of their boundaries)",
    "selection.tie_tolerance": "a Dice within this of the best counts as a tie (0: the "
                               "standard error of the difference); the largest tied α wins "
                               "(several hyperparameters: the largest sum)",
    "selection.seed": "random seed of the sampled points",
}


def option_help(key: str, default: object) -> str:
    """The help of the option for the config value ``key`` ("section.name"): its meaning,
    its choices (when enumerated) and its default."""
    text = HELP[key]
    if key in CHOICES:
        text += f"; one of {', '.join(CHOICES[key])}"
    if isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    return f"{text} (default {default})"
