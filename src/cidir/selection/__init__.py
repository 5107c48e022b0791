"""Selection: choosing α per patient at inference by Dice (or TRE) over a grid of α."""

from cidir.selection.alpha_search import AlphaRow, SelectionResult, alpha_grid, search_alpha

__all__ = ["AlphaRow", "SelectionResult", "alpha_grid", "search_alpha"]
