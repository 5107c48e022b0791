"""Mutual information (``objective.similarity = "mi"``): its values on hand-checkable
intensities, and a multi-modal registration that NCC cannot do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cidir.config import ObjectiveConfig, RunConfig
from cidir.data.synthetic import make_synthetic_pair
from cidir.errors import InputError
from cidir.fields import displacement_field
from cidir.losses import Objective
from cidir.losses.similarity import negative_mi
from cidir.training import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DTYPE = torch.float64


def _levels(bins: int, n: int, seed: int) -> torch.Tensor:
    """n intensities drawn from the bin centres k / (bins − 1), every level present."""
    g = torch.Generator().manual_seed(seed)
    k = torch.cat([torch.arange(bins), torch.randint(0, bins, (n - bins,), generator=g)])
    return (k.to(DTYPE) / (bins - 1)).view(1, -1)


def test_mi_is_invariant_to_a_one_to_one_remapping_of_intensities():
    """MI(x, g(x)) = MI(x, x) = the entropy of x for a permutation g of 8 intensity levels
    4 bins apart (non-monotone; the kernels of neighbouring levels do not overlap); −NCC is
    not invariant."""
    bins, levels = 29, 8
    x = _levels(levels, 4000, seed=0)  # k / 7: every 4th bin centre of 29, 0 and 1 included
    perm = torch.tensor([3, 0, 6, 1, 7, 2, 5, 4], dtype=DTYPE)
    y = perm[(x * (levels - 1)).round().long()] / (levels - 1)
    same, remapped = negative_mi(x, x, bins=bins), negative_mi(x, y, bins=bins)
    torch.testing.assert_close(remapped, same, rtol=1e-4, atol=1e-6)
    p = torch.bincount((x * (levels - 1)).round().long().view(-1)).to(DTYPE) / x.shape[-1]
    torch.testing.assert_close(-same, -(p * p.log()).sum().view(1), rtol=1e-3, atol=1e-3)
    ncc = torch.corrcoef(torch.cat([x, y]))[0, 1]
    assert abs(float(ncc)) < 0.5


def test_mi_of_independent_intensities_is_near_zero_and_groups_do_not_mix():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(2, 20000, generator=g, dtype=DTYPE)
    b = torch.rand(2, 20000, generator=g, dtype=DTYPE)
    b[1] = a[1] ** 2  # group 1 dependent
    mi = -negative_mi(a, b, bins=16)
    assert mi.shape == (2,)
    assert float(mi[0]) < 0.05 < 1.0 < float(mi[1])


def test_mi_does_not_depend_on_the_intensity_units():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(1, 5000, generator=g, dtype=DTYPE)
    b = torch.sin(6 * a) + 0.1 * torch.rand(1, 5000, generator=g, dtype=DTYPE)
    torch.testing.assert_close(negative_mi(1000 * a - 1024, 3 * b + 7), negative_mi(a, b))


def test_mi_bins_are_configured_and_validated():
    objective = Objective(ObjectiveConfig(similarity="mi", mi_bins=8, regularizers=()))
    x = _levels(8, 800, seed=4)
    torch.testing.assert_close(objective.similarity(x, x), negative_mi(x, x, bins=8))
    with pytest.raises(InputError, match="objective.mi_bins"):
        RunConfig().with_overrides({"objective.mi_bins": 2})


def _endpoint_error(pair, transform, alpha: float) -> float:
    mask = pair.fixed_mask.array.astype(bool)
    error = displacement_field(transform, alpha) - pair.true_displacement
    return float(np.linalg.norm(error, axis=-1)[mask].mean())


def test_mi_registers_a_multi_modal_pair_that_ncc_cannot():
    """The moving image in a second contrast (1 − √t: inverted, non-linear): at its best α of
    the grid 0, 0.25, …, 1, MI recovers the known field to a third of the identity error
    (measured: 0.80 mm at α 1 against 4.0 mm), NCC makes it worse than identity at every α."""
    pair = make_synthetic_pair(2, seed=0)
    m = pair.moving.array
    t = (m - m.min()) / (m.max() - m.min())
    moving = pair.moving.with_array((1.0 - np.sqrt(t) * (t > 0.02)).astype(np.float32))
    base = {"model.width": 64, "training.iterations": 300, "training.batch_size": 2000,
            "objective.calibration": "none",
            "objective.regularizers": [{"name": "bending", "lambda_min": 0.1,
                                        "lambda_max": 100.0}]}
    identity = float(np.linalg.norm(pair.true_displacement, axis=-1)[
        pair.fixed_mask.array.astype(bool)].mean())
    errors = {}
    for similarity in ("mi", "ncc"):
        config = RunConfig().with_overrides({**base, "objective.similarity": similarity})
        result = fit(pair.fixed, moving, config, pair.fixed_mask)
        errors[similarity] = [_endpoint_error(pair, result.transform, a)
                              for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert min(errors["mi"]) < identity / 3, errors
    assert min(errors["ncc"]) > identity, errors
