"""cidir: deformable image registration with a hyperparameter-conditioned implicit neural
representation (cIDIR). Train one network per image pair over a whole prior of
regularization weights α; choose α per patient at inference from the Dice of warped labels.

Subpackages: geometry (grids, frames, affine matrices, kinematics, images), models
(harmonizer, MLP), losses (similarity, regularizers, objective), training (loop, sampler,
prior, hooks), fields (world-frame transform, sampling, dense outputs), selection (α search),
evaluation (metrics), io (images, landmarks, models, field export), alignment (initial
affine), reporting (HTML report), data (phantom, DIR-LAB, synthetic pairs), runs (run folder
and commands), cli (the ``cidir`` command). ``cidir.api``: the in-memory API the commands
wrap (register, choose_alpha, evaluate, fields and warps).
"""

__version__ = "0.1.0"
