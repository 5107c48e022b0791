"""The phantom's breathing motion: an analytic, smooth, invertible displacement.

Frames: every function here takes and returns **local** coordinates, i.e. world mm (LPS:
x = patient's left, y = posterior, z = superior) minus the anatomy centre. The
displacement ``u`` is defined on the inhale (fixed) frame and points fixed → moving:
inhale point ``x`` corresponds to exhale point ``x + u(x)`` (the resampling convention of
``SimpleITK.DisplacementFieldTransform``).

From inhale to exhale the diaphragm rises (``u_z > 0`` at the lung base, decaying to 0 at
the apex), the chest wall falls back (``u_y > 0`` anteriorly) and moves medially
(``u_x`` towards the midline). Motion fades across the chest wall, near the spine and
outside the body.
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


@dataclass(frozen=True)
class BreathingMotion:
    """Inhale → exhale displacement with seeded amplitudes (all lengths in mm).

    Attributes:
        amplitude_z: cranio-caudal displacement of the lung base (mm, superior).
        k_ap: antero-posterior contraction per mm of distance from ``Y_HINGE``.
        k_lat: lateral contraction per mm of distance from the midline.
        asymmetry: relative excess of right over left hemidiaphragm motion.
    """

    amplitude_z: float = 16.0
    k_ap: float = 0.03
    k_lat: float = 0.024
    asymmetry: float = 0.05

    @classmethod
    def from_rng(cls, rng: np.random.Generator) -> BreathingMotion:
        """Amplitudes drawn within physiological ranges (base motion about 15-20 mm)."""
        return cls(
            amplitude_z=float(rng.uniform(15.0, 16.0)),
            k_ap=float(rng.uniform(0.026, 0.032)),
            k_lat=float(rng.uniform(0.018, 0.024)),
            asymmetry=float(rng.uniform(0.02, 0.06)),
        )

    def displacement(self, p: np.ndarray) -> np.ndarray:
        """u(p) for local inhale points ``p`` (N, 3) (x, y, z) mm → (N, 3) mm."""
        p = np.asarray(p, dtype=np.float64)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        # cranio-caudal profile: 0 at the apex, 1 at and below the base
        s = smoothstep((Z_APEX - z) / (Z_APEX - Z_BASE))
        # full motion inside the rib cage, fading across the chest wall to 5 % outside
        inner = 0.05 + 0.95 * (1.0 - smoothstep((_cage_radius(x, y) - 0.95) / 0.3))
        # the spine (vertebral bodies and arches) hardly moves: a flat-topped box-like dip
        box = np.exp(-0.5 * ((x - SPINE[0]) / 22.0) ** 6
                     - 0.5 * ((y - SPINE[1] - 18.0) / 38.0) ** 6)
        spine = 1.0 - 0.9 * box
        posterior = 1.0 + 0.15 * np.tanh(y / 60.0)
        side = 1.0 + self.asymmetry * np.tanh(-x / 40.0)
        uz = self.amplitude_z * s * inner * spine * posterior * side
        # chest wall contraction, stronger in the lower chest, fading outside the body
        g = 0.4 + 0.6 * s
        body = 1.0 - smoothstep((_body_radius(x, y) - 1.0) / 0.2)
        ux = -self.k_lat * x * g * body
        uy = self.k_ap * (Y_HINGE - y) * g * body
        return np.stack([ux, uy, uz], axis=-1)

    def inverse(self, q: np.ndarray, tol: float = 1e-9, max_iter: int = 200) -> np.ndarray:
        """Inhale points x with x + u(x) = q for local exhale points ``q`` (N, 3), mm.

        Fixed-point iteration x ← q − u(x); converges where |∇u| < 1 (inside the body).
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
