"""The phantom's breathing motion: an analytic, invertible displacement, smooth or sliding.

Frames: every function here takes and returns **local** coordinates, i.e. world mm (LPS:
x = patient's left, y = posterior, z = superior) minus the anatomy centre. The
displacement ``u`` is defined on the inhale (fixed) frame and points fixed → moving:
inhale point ``x`` corresponds to exhale point ``φ(x) = x + u(x)`` (the resampling
convention of ``SimpleITK.DisplacementFieldTransform``).

From inhale to exhale the diaphragm rises (``u_z > 0`` at the lung base, decaying to 0 at
the apex), the chest wall falls back (``u_y > 0`` anteriorly) and moves medially
(``u_x`` towards the midline). The spine hardly moves, nor does anything outside the body.

Two forms of the cranio-caudal component ``u_z`` (``u_x``, ``u_y`` are the same in both):

- smooth (``sliding=False``): ``u_z`` fades across the chest wall (over about 30 % of the
  rib-cage radius) to 5 % outside it: continuous everywhere.
- sliding (``sliding=True``): the pleural cavity C (inside the rib cage, less three still
  columns that hold the sternum, the vertebrae and the descending aorta) moves with the
  full ``u_z``: lungs, heart, mediastinum, diaphragm, liver and stomach. Everything else
  (ribs, muscles, fat, skin, spine, air) moves with ``WALL_FRACTION`` = 5 % of it. ``u_z``
  is a **true step** at ∂C. ∂C is a z-parallel cylinder in the *exhale* frame, so the
  slide along z maps it onto itself: both sides map the inhale interface
  ``{x : (x + u_x, y + u_y) ∈ ∂C}`` onto the same exhale surface, nothing opens or
  overlaps, the normal component of ``u`` is continuous up to the interface's small tilt
  (≈ 0.2 mm, measured) and the tangential (cranio-caudal) component jumps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Extents of the motion model in local mm (match phantom_anatomy's lungs).
Z_APEX = 100.0  # above the lung apex: no cranio-caudal motion
Z_BASE = -95.0  # below the inhale lung base: full cranio-caudal motion
CAGE = (122.0, 84.0, 4.0)  # inner rib-cage ellipse: semi-axes x, y (mm) and centre y (mm)
BODY = (150.0, 108.0)  # body cross-section semi-axes x, y (mm), centred at y = 0
SPINE = (0.0, 55.0)  # vertebral body axis (x, y) in mm
Y_HINGE = 80.0  # AP contraction is towards this posterior coronal plane (mm)
# Sliding variant: still columns (z-parallel, exhale frame, mm) cut out of the pleural
# cavity, each clear of the lungs and around a bone or vessel of phantom_anatomy.
STERNUM_COLUMN = (0.0, -84.0, 17.0, 9.0)  # centre x, y and semi-axes (sternum 14 × 6)
SPINE_COLUMN = (20.0, 17.0)  # half-width; front semi-axis in y (vertebral body 18 × 15)
AORTA_COLUMN = (20.0, 35.0, 13.5)  # centre x, y and radius (descending aorta: radius 12)
WALL_FRACTION = 0.05  # cranio-caudal motion outside the cavity, relative to inside


def smoothstep(t: np.ndarray) -> np.ndarray:
    """C1 ramp: 0 for t <= 0, 1 for t >= 1, 3t² - 2t³ in between."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _cage_radius(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Normalized elliptical radius of the inner rib cage (1 on its surface)."""
    a, b, yc = CAGE
    return np.sqrt((x / a) ** 2 + ((y - yc) / b) ** 2)


def _body_radius(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Normalized elliptical radius of the body outline (1 on the skin)."""
    return np.sqrt((x / BODY[0]) ** 2 + (y / BODY[1]) ** 2)


def _ellipse_sd(x, y, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    """Signed distance (mm, negative inside) to an ellipse, a lower bound of its modulus."""
    return (np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2) - 1.0) * min(a, b)


def _spine_column_sd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (mm) to the spine column: |x| <= half-width behind the vertebral
    body's centre, and a half-ellipse in front of it."""
    hw, front = SPINE_COLUMN
    dx, dy = np.abs(x - SPINE[0]) - hw, SPINE[1] - y
    box = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0)) + np.minimum(np.maximum(dx, dy), 0)
    return np.minimum(box, _ellipse_sd(x, y, SPINE[0], SPINE[1], hw, front))


def cavity_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (mm, positive inside) of exhale in-plane positions (x, y) to the
    sliding interface ∂C, the boundary of the pleural cavity C (see the module docstring).

    A lower bound of the true distance (exact for the columns' flat sides); the same at
    every z, since ∂C is a z-parallel cylinder.
    """
    cage = (1.0 - _cage_radius(x, y)) * min(CAGE[:2])
    sternum = _ellipse_sd(x, y, *STERNUM_COLUMN)
    aorta = np.hypot(x - AORTA_COLUMN[0], y - AORTA_COLUMN[1]) - AORTA_COLUMN[2]
    return np.minimum.reduce([cage, sternum, aorta, _spine_column_sd(x, y)])


@dataclass(frozen=True)
class BreathingMotion:
    """Inhale → exhale displacement with seeded amplitudes (all lengths in mm).

    Attributes:
        amplitude_z: cranio-caudal displacement of the lung base (mm, superior).
        k_ap: antero-posterior contraction per mm of distance from ``Y_HINGE``.
        k_lat: lateral contraction per mm of distance from the midline.
        asymmetry: relative excess of right over left hemidiaphragm motion.
        sliding: the lungs slide along a still chest wall (``u_z`` steps at the pleural
            cavity's boundary) instead of dragging it along smoothly.
    """

    amplitude_z: float = 16.0
    k_ap: float = 0.03
    k_lat: float = 0.024
    asymmetry: float = 0.05
    sliding: bool = False

    @classmethod
    def from_rng(cls, rng: np.random.Generator, sliding: bool = False) -> BreathingMotion:
        """Amplitudes drawn within physiological ranges (base motion about 15-20 mm); the
        same draws with and without ``sliding``."""
        return cls(
            amplitude_z=float(rng.uniform(15.0, 16.0)),
            k_ap=float(rng.uniform(0.026, 0.032)),
            k_lat=float(rng.uniform(0.018, 0.024)),
            asymmetry=float(rng.uniform(0.02, 0.06)),
            sliding=sliding,
        )

    def _profile(self, x: np.ndarray, y: np.ndarray, z: np.ndarray):
        """Cranio-caudal profile s (0 at the apex, 1 at and below the base) and the spine,
        posterior and side factors of ``u_z``."""
        s = smoothstep((Z_APEX - z) / (Z_APEX - Z_BASE))
        # the spine (vertebral bodies and arches) hardly moves: a flat-topped box-like dip
        box = np.exp(-0.5 * ((x - SPINE[0]) / 22.0) ** 6
                     - 0.5 * ((y - SPINE[1] - 18.0) / 38.0) ** 6)
        spine = 1.0 - 0.9 * box
        posterior = 1.0 + 0.15 * np.tanh(y / 60.0)
        side = 1.0 + self.asymmetry * np.tanh(-x / 40.0)
        return s, spine, posterior, side

    def _in_plane(self, x: np.ndarray, y: np.ndarray, s: np.ndarray):
        """(u_x, u_y): chest wall contraction, stronger in the lower chest (larger s),
        fading outside the body."""
        g = 0.4 + 0.6 * s
        body = 1.0 - smoothstep((_body_radius(x, y) - 1.0) / 0.2)
        return -self.k_lat * x * g * body, self.k_ap * (Y_HINGE - y) * g * body

    def displacement(self, p: np.ndarray) -> np.ndarray:
        """u(p) for local inhale points ``p`` (N, 3) (x, y, z) mm → (N, 3) mm.

        With ``sliding`` the result is discontinuous at the interface (see the module
        docstring); :meth:`cavity_displacement` is its smooth inner branch.
        """
        p = np.asarray(p, dtype=np.float64)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        s, spine, posterior, side = self._profile(x, y, z)
        ux, uy = self._in_plane(x, y, s)
        if self.sliding:
            uz = self.amplitude_z * s * spine * posterior * side
            uz = np.where(cavity_distance(x + ux, y + uy) > 0.0, uz, WALL_FRACTION * uz)
        else:
            # full motion inside the rib cage, fading across the chest wall to 5 % outside
            inner = 0.05 + 0.95 * (1.0 - smoothstep((_cage_radius(x, y) - 0.95) / 0.3))
            uz = self.amplitude_z * s * inner * spine * posterior * side
        return np.stack([ux, uy, uz], axis=-1)

    def cavity_displacement(self, p: np.ndarray) -> np.ndarray:
        """The smooth branch of u that holds inside the pleural cavity (both variants:
        the sliding one's u there, the smooth one's u inside 95 % of the rib cage),
        extended to all local inhale points ``p`` (N, 3) mm → (N, 3) mm."""
        p = np.asarray(p, dtype=np.float64)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        s, spine, posterior, side = self._profile(x, y, z)
        ux, uy = self._in_plane(x, y, s)
        return np.stack([ux, uy, self.amplitude_z * s * spine * posterior * side], axis=-1)

    def cavity_volume_ratio(self, p: np.ndarray, h: float = 0.1) -> np.ndarray:
        """det ∇φ (exhale volume / inhale volume) of the cavity branch at local inhale points
        ``p`` (N, 3) mm, by central differences of step ``h`` mm; (N,)."""
        p = np.asarray(p, dtype=np.float64)
        jac = np.empty(p.shape[:-1] + (3, 3))
        for i in range(3):
            step = np.zeros(3)
            step[i] = h
            diff = self.cavity_displacement(p + step) - self.cavity_displacement(p - step)
            jac[..., :, i] = diff / (2.0 * h)
        jac += np.eye(3)
        return np.linalg.det(jac)

    def interface_distance(self, p: np.ndarray) -> np.ndarray:
        """Distance (mm, lower bound, positive in the cavity) from local inhale points ``p``
        (N, 3) to the sliding interface, measured at their exhale in-plane position (the
        slide is along z); +inf everywhere for the smooth motion."""
        p = np.asarray(p, dtype=np.float64)
        if not self.sliding:
            return np.full(p.shape[:-1], np.inf)
        x, y = p[..., 0], p[..., 1]
        s = smoothstep((Z_APEX - p[..., 2]) / (Z_APEX - Z_BASE))
        ux, uy = self._in_plane(x, y, s)
        return cavity_distance(x + ux, y + uy)

    def inverse(self, q: np.ndarray, tol: float = 1e-9, max_iter: int = 200) -> np.ndarray:
        """Inhale points x with x + u(x) = q for local exhale points ``q`` (N, 3), mm.

        Fixed-point iteration x ← q − u(x); converges where |∇u| < 1 (inside the body) and,
        with ``sliding``, away from the interface (points a few mm inside the lungs).
        Raises ``RuntimeError`` if the residual does not fall below ``tol`` mm.
        """
        q = np.asarray(q, dtype=np.float64)
        x = q - self.displacement(q)
        for _ in range(max_iter):
            x_new = q - self.displacement(x)
            step = np.max(np.abs(x_new - x)) if x.size else 0.0
            x = x_new
            if step < tol * 0.1:
                break
        residual = np.max(np.abs(x + self.displacement(x) - q)) if x.size else 0.0
        if residual > tol:
            raise RuntimeError(f"motion inverse: residual {residual:.3g} mm > {tol:g} mm")
        return x
