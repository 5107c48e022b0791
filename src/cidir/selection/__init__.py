"""Selection: choosing α per patient at inference over a grid of α, by Dice, boundary
distance (surface), TRE or (without labels) the L-curve corner."""

from cidir.selection.alpha_search import AlphaRow, SelectionResult, alpha_grid, search_alpha
from cidir.selection.lcurve import search_lcurve
from cidir.selection.surface import search_surface

__all__ = ["AlphaRow", "SelectionResult", "alpha_grid", "search_alpha", "search_lcurve",
           "search_surface"]
