"""Models: the harmonizer (α → sine parameters), the derivative-propagating MLP, and the
deformation model that combines them (cidir, IDIR-SIREN and ReLU baselines)."""

from cidir.models.deformation import DeformationModel
from cidir.models.harmonizer import Harmonizer
from cidir.models.jet_mlp import Jet, JetMLP, pair_indices

__all__ = ["DeformationModel", "Harmonizer", "Jet", "JetMLP", "pair_indices"]
