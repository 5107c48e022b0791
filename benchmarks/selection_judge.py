"""The yardsticks of the α-selection study: a pair's trained network judged at any α of the
grid by what the selection never sees — with landmarks (the phantom), the mean landmark TRE
and the mean error of the field against the known one (at 200,000 seeded voxels of the lung
mask); without (lung MRI, brain), the exact Dice of the *evaluation* labels (every voxel of
their bounding box grown by 20 mm, nearest label). Each α is computed once (memoized);
``oracle`` gives the best α of the grid by each yardstick, in hindsight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmarks.selection_fits import FittedPair
from cidir.evaluation.metrics import dice_per_label, mean_dice, tre
from cidir.fields import warp_labels
from cidir.geometry import Image
from cidir.selection.alpha_space import Alpha, as_alpha

BOX_MARGIN_MM = 20.0
FIELD_POINTS = 200_000


def _box(labels: Image, values: list[int]) -> tuple[tuple[slice, ...], Image]:
    """The label map's bounding box of ``values`` grown by BOX_MARGIN_MM: its slices (array
    order) and the crop as an Image on the sub-grid."""
    where = np.nonzero(np.isin(labels.array, values))
    spacing = np.asarray(labels.grid.spacing_zyx, float)
    grow = np.ceil(BOX_MARGIN_MM / spacing).astype(int)
    box = tuple(slice(max(int(w.min()) - g, 0), min(int(w.max()) + g + 1, n))
                for w, g, n in zip(where, grow, labels.array.shape, strict=True))
    start = tuple(int(s.start) for s in reversed(box))
    size = tuple(int(s.stop - s.start) for s in reversed(box))
    return box, Image(labels.array[box], labels.grid.region(start, size), labels.source)


@dataclass
class Judge:
    """Memoized yardsticks of one fitted pair (module docstring)."""

    fitted: FittedPair
    memo: dict[Alpha, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pair = self.fitted.pair
        _, self.fixed_box = _box(pair.fixed_eval, pair.eval_labels)
        self.field_points = None
        if pair.gt_field is not None and pair.fold_mask is not None:
            flat = np.flatnonzero(pair.fold_mask.array.reshape(-1) > 0)
            if len(flat) > FIELD_POINTS:
                flat = np.sort(np.random.default_rng(0).choice(flat, FIELD_POINTS, False))
            self.field_points = (pair.fixed.grid.world_points(flat),
                                 pair.gt_field.reshape(-1, pair.ndim)[flat])

    def at(self, alpha: Alpha) -> dict:
        key = as_alpha(alpha)
        if key not in self.memo:
            self.memo[key] = self._measure(key)
        return self.memo[key]

    def _measure(self, alpha: Alpha) -> dict:
        pair, transform = self.fitted.pair, self.fitted.transform
        out = {}
        if pair.fixed_points is None:
            warped = warp_labels(transform, pair.moving_eval, alpha,
                                 grid=self.fixed_box.grid).array
            out["dice_eval"] = mean_dice(dice_per_label(self.fixed_box.array, warped,
                                                        pair.eval_labels))
        else:
            out["tre_mm"] = float(tre(transform.map_points(pair.fixed_points, alpha),
                                      pair.moving_points).mean())
        if self.field_points is not None:
            world, truth = self.field_points
            moved = transform.map_points(world, alpha) - world
            out["field_error_mm"] = float(np.linalg.norm(moved - truth, axis=1).mean())
        return out

    def oracle(self, alphas: list[Alpha]) -> dict:
        """Per yardstick, the best α of ``alphas`` and its value."""
        table = {a: self.at(a) for a in alphas}
        out = {}
        for key in table[alphas[0]]:
            pick = (max if key == "dice_eval" else min)(alphas, key=lambda a: table[a][key])
            out[key] = {"alpha": pick, "value": table[pick][key]}
        return out
