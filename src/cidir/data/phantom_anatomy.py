"""The phantom's anatomy: a CT-like thorax rendered analytically in Hounsfield units.

Frames: every function takes **local** coordinates, i.e. world mm (LPS: x = patient's
left, y = posterior, z = superior) minus the anatomy centre, as (N, 3) arrays in (x, y, z)
order. The anatomy is defined in the exhale (moving) frame. Shapes are signed-distance-like
functions (mm, negative inside); edges are rendered with a linear ramp of width ``w`` mm
(in-plane partial volume), so nothing is interpolated from a voxel grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cidir.data.phantom_motion import BODY, CAGE, SPINE

LEFT, RIGHT = 1, -1  # side sign: x > 0 is the patient's left in LPS
# per lung: |centre x|, semi-axis x (mm), diaphragm dome top z (mm, exhale)
LUNG = {LEFT: (68.0, 56.0, -60.0), RIGHT: (66.0, 58.0, -52.0)}
LUNG_YC, LUNG_B, LUNG_P = 4.0, 80.0, 2.6  # centre y, semi-axis y (mm), superellipse exponent
LUNG_Z0, LUNG_APEX, X_MED = 20.0, 95.0, 22.0  # apex cap start/top z, mediastinum half-width
HEART_C, HEART_R = np.array([22.0, -30.0, -22.0]), np.array([52.0, 42.0, 42.0])
AORTA = (20.0, 35.0, 12.0)  # descending aorta: x, y, radius (mm)
FAT_MM = 13.0  # subcutaneous fat thickness
RIB_ELLIPSE = (129.0, 90.0, 3.0)  # rib centre-line: semi-axes x, y and centre y (mm)
RIB_Z0, RIB_PITCH, N_RIBS = 90.0, 20.0, 11  # posterior z of the first rib, spacing, count
HU = {
    "air": -1000.0, "fat": -100.0, "muscle": 50.0, "soft": 35.0, "heart": 40.0,
    "liver": 60.0, "bone": 700.0, "cancellous": 300.0, "disc": 80.0, "vessel": 40.0,
    "tumour": 30.0, "lung": -850.0,
}


#: det ∇φ at the rendered points of the given indices (mass conservation of the parenchyma)
VolumeRatio = Callable[[np.ndarray], np.ndarray]


def _reindexed(volume_ratio: VolumeRatio, subset: np.ndarray) -> VolumeRatio:
    """``volume_ratio`` for indices into the points ``subset`` of the original points."""
    return lambda i: volume_ratio(subset[i])


def ramp(d: np.ndarray, w: float) -> np.ndarray:
    """Partial-volume fraction of a shape with signed distance ``d`` (mm), edge width w."""
    return np.clip(0.5 - d / w, 0.0, 1.0)


def _mix(hu: np.ndarray, value, frac: np.ndarray) -> np.ndarray:
    return hu + (value - hu) * frac


def _ellipsoid_sd(p: np.ndarray, centre: np.ndarray, semi: np.ndarray) -> np.ndarray:
    """Approximate signed distance (mm) to an axis-aligned ellipsoid."""
    rho = np.sqrt((((p - centre) / semi) ** 2).sum(axis=-1))
    return (rho - 1.0) * semi.min()


def heart_sd(p: np.ndarray) -> np.ndarray:
    """Signed distance (mm) to the heart, anterior-left in the mediastinum."""
    return _ellipsoid_sd(p, HEART_C, HEART_R)


def dome_z(x: np.ndarray, y: np.ndarray, side: int) -> np.ndarray:
    """z (mm, exhale) of the diaphragm dome under the lung on ``side``."""
    top = LUNG[side][2]
    return top - 30.0 * (((x - side * 60.0) / 65.0) ** 2 + ((y + 5.0) / 85.0) ** 2)


def _lung_side_sd(p: np.ndarray, side: int) -> np.ndarray:
    """Signed distance (mm) to one lung's own shape: apex cap, dome base, medial cut."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    xc, a, _ = LUNG[side]
    rho_xy = ((np.abs(x - side * xc) / a) ** LUNG_P + (np.abs(y - LUNG_YC) / LUNG_B) ** LUNG_P)
    cap = np.clip((z - LUNG_Z0) / (LUNG_APEX - LUNG_Z0), 0.0, None)
    d = (np.sqrt(rho_xy ** (2.0 / LUNG_P) + cap**2) - 1.0) * 50.0
    d = np.maximum(d, X_MED - side * x)
    return np.maximum(d, dome_z(x, y, side) - z)


def _lung_common_sd(p: np.ndarray, heart: np.ndarray | None = None) -> np.ndarray:
    """Signed distance (mm) of the space both lungs share: inside the rib cage, clear of the
    heart, aorta and spine. ``heart`` is ``heart_sd(p)`` if already known."""
    x, y = p[..., 0], p[..., 1]
    heart = heart_sd(p) if heart is None else heart
    d = (np.sqrt((x / CAGE[0]) ** 2 + ((y - CAGE[2]) / CAGE[1]) ** 2) - 1) * 90
    d = np.maximum(d, 4.0 - heart)
    d = np.maximum(d, 3.0 - (np.hypot(x - AORTA[0], y - AORTA[1]) - AORTA[2]))
    return np.maximum(d, 5.0 - (np.hypot((x - SPINE[0]) / 18.0, (y - SPINE[1]) / 15.0) - 1) * 15)


def lung_sd(p: np.ndarray, side: int) -> np.ndarray:
    """Signed distance (mm, approximate) to one lung (``LEFT`` or ``RIGHT``)."""
    return np.maximum(_lung_side_sd(p, side), _lung_common_sd(p))


def lungs_sd(p: np.ndarray) -> np.ndarray:
    """Signed distance (mm) to the union of both lungs."""
    common = _lung_common_sd(p)
    return np.maximum(np.minimum(_lung_side_sd(p, LEFT), _lung_side_sd(p, RIGHT)), common)


def segments_sd(p, seg_a, seg_b, r_a, r_b, reach: float, cell: float = 8.0) -> np.ndarray:
    """Signed distance (mm) of points (N, 3) to a union of tapered capsules, capped at reach.

    Capsule i runs from ``seg_a[i]`` (radius ``r_a[i]``) to ``seg_b[i]`` (radius ``r_b[i]``).
    Points are bucketed in cubic cells of ``cell`` mm so that each capsule only visits the
    points near its bounding box.
    """
    out = np.full(len(p), float(reach))
    if len(p) == 0 or len(seg_a) == 0:
        return out
    lo, hi = p.min(axis=0), p.max(axis=0)
    pad = np.maximum(r_a, r_b)[:, None] + reach
    hit = np.all((np.minimum(seg_a, seg_b) - pad <= hi) & (np.maximum(seg_a, seg_b) + pad >= lo),
                 axis=1)
    seg_a, seg_b, r_a, r_b = seg_a[hit], seg_b[hit], r_a[hit], r_b[hit]
    keys = np.floor((p - lo) / cell).astype(np.int64)
    dims = keys.max(axis=0) + 1
    flat = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    order = np.argsort(flat, kind="stable")
    sflat = flat[order]
    for a, b, ra, rb in zip(seg_a, seg_b, r_a, r_b, strict=True):
        pad = max(ra, rb) + reach
        kmin = np.maximum(np.floor((np.minimum(a, b) - pad - lo) / cell).astype(np.int64), 0)
        kmax = np.minimum(np.floor((np.maximum(a, b) + pad - lo) / cell).astype(np.int64),
                          dims - 1)
        if np.any(kmin > kmax):
            continue
        ix, iy, iz = np.meshgrid(*[np.arange(lo_, hi_ + 1) for lo_, hi_ in zip(kmin, kmax,
                                                                             strict=True)],
                                 indexing="ij")
        ids = ((ix * dims[1] + iy) * dims[2] + iz).ravel()
        starts = np.searchsorted(sflat, ids, "left")
        lengths = np.searchsorted(sflat, ids, "right") - starts
        total = int(lengths.sum())
        if total == 0:
            continue
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        cand = order[np.arange(total) + offsets]
        ab = b - a
        q = p[cand] - a
        t = np.clip(q @ ab / (ab @ ab), 0.0, 1.0)
        d = np.linalg.norm(q - t[:, None] * ab, axis=1) - (ra + t * (rb - ra))
        out[cand] = np.minimum(out[cand], d)
    return out


def _rotate_towards(d: np.ndarray, e: np.ndarray, angle: float) -> np.ndarray:
    """Unit vector d rotated by ``angle`` (rad) in the plane of d and unit e ⟂ d."""
    return np.cos(angle) * d + np.sin(angle) * e


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _random_perpendicular(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return _unit(v - (v @ d) * d)


def grow_tree(rng: np.random.Generator, side: int, generations: int = 7):
    """A random bifurcating vessel tree in one lung, grown from the hilum (exhale frame).

    Returns segment starts/ends (S, 3) mm, radii at start/end (S,) mm, and bifurcation
    points (B, 3) mm where two accepted children branch off.
    """
    root = np.array([side * 26.0, 0.0, 15.0])
    trunks = [(0.5, 0.1, 0.85), (1.0, -0.5, 0.1), (1.0, 0.5, 0.1), (0.6, 0.5, -0.7),
              (0.6, -0.5, -0.6)]
    stack = [(root, _unit(np.array([side * tx, ty, tz]) + rng.normal(0, 0.08, 3)), 0, 5.0, 32.0)
             for tx, ty, tz in reversed(trunks)]
    segs, nodes = [], []
    while stack:
        start, d, gen, r, length = stack.pop()
        end = None
        for attempt in range(6):
            dd = d if attempt == 0 else _unit(d + rng.normal(0, 0.25 * attempt, 3))
            for scale in (1.0, 0.75, 0.55):
                cand = start + dd * length * scale
                if lung_sd(cand[None], side)[0] < -(r + 3.0):
                    end = cand
                    break
            if end is not None:
                break
        if end is None:
            continue
        segs.append((start, end, r, 0.9 * r))
        if gen + 1 < generations:
            radial = _unit(end - root)
            e = _random_perpendicular(dd, rng)
            for sign in (1.0, -1.0):
                angle = np.deg2rad(rng.uniform(22.0, 40.0))
                child = _unit(_rotate_towards(dd, sign * e, angle) + 0.25 * radial)
                stack.append((end, child, gen + 1, 0.9 * r * 0.85, length * 0.8))
            nodes.append(end)
    starts = np.array([s[0] for s in segs])
    ends = np.array([s[1] for s in segs])
    # a bifurcation is a node where both children were accepted (they start exactly there)
    children = np.array([np.sum(np.all(starts == n, axis=1)) for n in nodes], dtype=int)
    bif = np.array(nodes)[children >= 2] if nodes else np.zeros((0, 3))
    r_a = np.array([s[2] for s in segs])
    r_b = np.array([s[3] for s in segs])
    return starts, ends, r_a, r_b, bif


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Seeded parts of the anatomy (exhale frame, local mm); the rest is fixed geometry.

    Attributes:
        seg_a, seg_b, r_a, r_b: vessel-tree capsules of both lungs (mm).
        bifurcations: (B, 3) bifurcation points of the trees (mm).
        tumour_centre, tumour_radius: the lung tumour (mm).
        waves: (K, 4) parenchyma texture plane waves: wave vector (rad/mm) and phase.
    """

    seg_a: np.ndarray
    seg_b: np.ndarray
    r_a: np.ndarray
    r_b: np.ndarray
    bifurcations: np.ndarray
    tumour_centre: np.ndarray
    tumour_radius: float
    waves: np.ndarray

    @classmethod
    def generate(cls, rng: np.random.Generator) -> Anatomy:
        """Vessel trees, tumour and texture drawn from ``rng``."""
        parts = [grow_tree(rng, side) for side in (LEFT, RIGHT)]
        seg_a, seg_b, r_a, r_b, bif = (np.concatenate(x) for x in zip(*parts, strict=True))
        radius = float(rng.uniform(8.0, 10.0))
        side = int(rng.choice([LEFT, RIGHT]))
        big = r_a >= 2.5
        for _ in range(10000):
            c = np.array([side * rng.uniform(30, 120), rng.uniform(-60, 80), rng.uniform(-60, 40)])
            clear = segments_sd(c[None], seg_a[big], seg_b[big], r_a[big], r_b[big], 50.0)[0]
            if lung_sd(c[None], side)[0] < -(radius + 8.0) and clear > radius + 1.0:
                break
        else:
            raise RuntimeError("phantom: found no place for the tumour")
        k = rng.normal(size=(8, 3))
        k *= (2 * np.pi / rng.uniform(15.0, 40.0, 8) / np.linalg.norm(k, axis=1))[:, None]
        waves = np.concatenate([k, rng.uniform(0, 2 * np.pi, (8, 1))], axis=1)
        return cls(seg_a, seg_b, r_a, r_b, bif, c, radius, waves)

    def tumour_sd(self, p: np.ndarray) -> np.ndarray:
        """Signed distance (mm) to the tumour sphere."""
        return np.linalg.norm(p - self.tumour_centre, axis=-1) - self.tumour_radius

    def parenchyma(self, p: np.ndarray) -> np.ndarray:
        """Lung parenchyma HU at exhale: gravity gradient (denser posteriorly) plus smooth
        texture (the inhale HU follows from mass conservation, see :meth:`render`)."""
        tex = np.sin(p @ self.waves[:, :3].T + self.waves[:, 3]).sum(axis=-1)
        return HU["lung"] + 25.0 * np.tanh(p[..., 1] / 60.0) + 5.0 * tex

    def render(self, p: np.ndarray, w: float, volume_ratio: VolumeRatio | None = None):
        """HU (N,), labels (N,) int32 and lung mask (N,) bool at local points p (N, 3).

        ``w`` is the edge width in mm; labels and mask are thresholded at the edges.
        Structures are only evaluated on the points that can reach them. With
        ``volume_ratio`` (indices into p → det ∇φ there), the lung parenchyma keeps its
        mass: its density ρ = 1 + HU/1000 is multiplied by det ∇φ (vessels, airways and
        tumour are incompressible and keep their HU).
        """
        hu = np.full(len(p), HU["air"])
        label = np.zeros(len(p), dtype=np.int32)
        lung = np.zeros(len(p), dtype=bool)
        x, y = p[:, 0], p[:, 1]
        rb = ((np.abs(x) / BODY[0]) ** 2.2 + (np.abs(y) / BODY[1]) ** 2.2) ** (1 / 2.2)
        body = np.flatnonzero(rb < 1.0 + w / BODY[1])
        q, h = p[body], _mix(hu[body], HU["fat"], ramp((rb[body] - 1.0) * BODY[1], w))
        x, y = q[:, 0], q[:, 1]
        inner = BODY[1] - FAT_MM
        rm = ((np.abs(x) / (BODY[0] - FAT_MM)) ** 2.2 + (np.abs(y) / inner) ** 2.2) ** (1 / 2.2)
        h = _mix(h, HU["muscle"], ramp((rm - 1.0) * inner, w))
        cage = (np.sqrt((x / (CAGE[0] + 2)) ** 2 + ((y - CAGE[2]) / (CAGE[1] + 2)) ** 2) - 1) * 86
        h = _mix(h, HU["soft"], ramp(cage, w))
        cav = np.flatnonzero(cage < w)
        ratio = None if volume_ratio is None else _reindexed(volume_ratio, body[cav])
        h[cav], label[body[cav]], lung[body[cav]] = self._render_cavity(q[cav], h[cav], w,
                                                                        ratio)
        hu[body] = _render_bones(q, h, w)
        return hu, label, lung

    def _render_cavity(self, p: np.ndarray, hu: np.ndarray, w: float,
                       volume_ratio: VolumeRatio | None = None):
        """Inside the rib cage: abdomen, heart, aorta, airways, lungs, vessels, tumour."""
        x, y = p[:, 0], p[:, 1]
        label = np.zeros(len(p), dtype=np.int32)
        hu = self._render_abdomen(p, hu, w)
        hh = heart_sd(p)
        hu = _mix(hu, HU["fat"] + 10.0, ramp(hh - 4.0, w))
        hu = _mix(hu, HU["heart"], ramp(hh, w))
        label[hh < 0] = 3
        hu = _mix(hu, 45.0, ramp(np.hypot(x - AORTA[0], y - AORTA[1]) - AORTA[2], w))
        air = _airways_sd(p)
        hu = _mix(hu, HU["soft"], ramp(air - 1.5, w))
        hu = _mix(hu, HU["air"], ramp(air, w))
        label[air < 0] = 5
        common = _lung_common_sd(p, hh)
        dl = np.maximum(_lung_side_sd(p, LEFT), common)
        dr = np.maximum(_lung_side_sd(p, RIGHT), common)
        dlung = np.minimum(dl, dr)
        lung = dlung < 0
        label[dl < 0] = 1
        label[dr < 0] = 2
        near = np.flatnonzero(dlung < w)
        a_lung = ramp(dlung[near], w)
        pn = p[near]
        par = self.parenchyma(pn)
        if volume_ratio is not None:  # mass conservation: ρ = 1 + HU/1000 scales with det ∇φ
            par = (1000.0 + par) * volume_ratio(near) - 1000.0
        hn = _mix(hu[near], par, a_lung)
        dv = segments_sd(pn, self.seg_a, self.seg_b, self.r_a, self.r_b, w)
        hn = _mix(hn, HU["vessel"], ramp(dv, w) * a_lung)
        label[near[(dv < 0) & lung[near]]] = 5
        dt = self.tumour_sd(pn)
        hu[near] = _mix(hn, HU["tumour"], ramp(dt, w))
        label[near[dt < 0]] = 4
        return hu, label, lung

    def _render_abdomen(self, p: np.ndarray, hu: np.ndarray, w: float) -> np.ndarray:
        """Liver under the right dome and a gastric air bubble under the left dome."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        cage = (np.sqrt((x / CAGE[0]) ** 2 + ((y - CAGE[2]) / CAGE[1]) ** 2) - 1) * 86
        liver = np.maximum.reduce([z - dome_z(x, y, RIGHT) + 4.0, cage, x - 25.0])
        hu = _mix(hu, HU["liver"], ramp(liver, w))
        bubble = _ellipsoid_sd(p, np.array([62.0, -10.0, -82.0]), np.array([30.0, 24.0, 12.0]))
        bubble = np.maximum(bubble, z - dome_z(x, y, LEFT) + 6.0)
        return _mix(hu, HU["air"], ramp(bubble, w))


def _airways_sd(p: np.ndarray) -> np.ndarray:
    """Signed distance (mm) to the trachea and main bronchi (lumen)."""
    carina = np.array([0.0, -5.0, 35.0])
    a = np.array([[0.0, -5.0, 140.0], carina, carina])
    b = np.array([carina, [26.0, 0.0, 18.0], [-26.0, 0.0, 20.0]])
    return segments_sd(p, a, b, np.array([9.0, 6.5, 7.0]), np.array([9.0, 5.5, 6.0]), 10.0)


def _render_bones(p: np.ndarray, hu: np.ndarray, w: float) -> np.ndarray:
    """Ribs, sternum and thoracic spine, drawn over ``hu`` at body points p (N, 3)."""
    x, y = p[:, 0], p[:, 1]
    ax, by, yc = RIB_ELLIPSE
    r_pt = np.hypot(x, y - yc)
    rho = np.hypot(x / ax, (y - yc) / by)
    d_rad = r_pt - r_pt / np.maximum(rho, 1e-9)
    hu = hu.copy()
    i = np.flatnonzero(np.abs(d_rad) < 3.5 + w)
    hu[i] = _mix(hu[i], HU["bone"], ramp(_rib_sd(p[i], r_pt[i], d_rad[i]), w))
    i = np.flatnonzero((np.abs(x) < 14.0 + w) & (np.abs(y + 84.0) < 6.0 + w))
    sternum = np.maximum((np.hypot(x[i] / 14.0, (y[i] + 84.0) / 6.0) - 1) * 6.0,
                         np.abs(p[i, 2] - 10) - 70)
    hu[i] = _mix(hu[i], 450.0, ramp(sternum, w))
    i = np.flatnonzero((np.abs(x - SPINE[0]) < 18.0 + w) & (y > SPINE[1] - 15.0 - w))
    hu[i] = _render_spine(p[i], hu[i], w)
    return hu


def _rib_sd(p: np.ndarray, r_pt: np.ndarray, d_rad: np.ndarray) -> np.ndarray:
    """Signed distance (mm) to the ribs: bands around the cage descending anteriorly.

    ``r_pt`` is the in-plane distance from the rib ellipse's centre and ``d_rad`` the
    radial offset from the rib centre-line (mm).
    """
    yc = RIB_ELLIPSE[2]
    alpha = np.arccos(np.clip((p[:, 1] - yc) / np.maximum(r_pt, 1e-9), -1.0, 1.0))  # 0: back
    z_eff = p[:, 2] + 17.5 * (1.0 - np.cos(alpha))
    k = np.clip(np.round((RIB_Z0 - z_eff) / RIB_PITCH), 0, N_RIBS - 1)
    dz = z_eff - (RIB_Z0 - k * RIB_PITCH)
    rib = (np.hypot(d_rad / 3.5, dz / 5.0) - 1.0) * 3.5
    return np.maximum(rib, np.maximum(0.06 * np.pi - alpha, alpha - 0.78 * np.pi) * r_pt)


def _render_spine(p: np.ndarray, hu: np.ndarray, w: float) -> np.ndarray:
    """Vertebral bodies (cortex + cancellous core), discs, arches and spinous processes."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    body_xy = (np.hypot((x - SPINE[0]) / 18.0, (y - SPINE[1]) / 15.0) - 1.0) * 15.0
    zz = np.abs(np.mod(z + 200.0, 26.0) - 13.0) - 10.5
    hu = _mix(hu, HU["disc"], ramp(body_xy, w))
    vb = np.maximum(body_xy, zz)
    hu = _mix(hu, HU["bone"], ramp(vb, w))
    hu = _mix(hu, HU["cancellous"], ramp(vb + 2.0, w))
    rc = np.hypot(x - SPINE[0], y - (SPINE[1] + 27.0))
    arch = np.maximum.reduce([rc - 15.0, 9.0 - rc, zz + 3.0])
    hu = _mix(hu, 600.0, ramp(arch, w))
    y_sp = np.clip(y, SPINE[1] + 40.0, SPINE[1] + 47.0)
    spinous = np.maximum(np.hypot(x - SPINE[0], y - y_sp) - 4.0, zz + 5.0)
    return _mix(hu, 600.0, ramp(spinous, w))
