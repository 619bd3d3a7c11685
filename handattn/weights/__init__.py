"""Weight files: the in-memory `Weights`, loading (untrusted files) and saving (both forms)."""

from handattn.weights.core import Head, Weights
from handattn.weights.read import load, loads
from handattn.weights.sections import from_dict
from handattn.weights.write import dumps, save

__all__ = ["Head", "Weights", "dumps", "from_dict", "load", "loads", "save"]
