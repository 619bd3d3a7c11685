"""handattn: write self-attention weights by hand, and see how close they come to the exact rule.

from handattn import load, get_problem, sample_eval_set, score
result = score(load("solutions/problem2.toml"), sample_eval_set(get_problem("problem2")))
"""

__version__ = "0.1.1"

import warnings  # noqa: E402

# torch warns at import when numpy is absent; handattn never uses numpy, so a student would see
# noise above every report. Only that one message is silenced, only while torch is imported:
# the caller's warning filters are as they were.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)
    import torch  # noqa: E402, F401

from handattn.circuits import circuits  # noqa: E402
from handattn.descent import Fit, fit  # noqa: E402
from handattn.diagnose import TextView, inspect_text  # noqa: E402
from handattn.errors import (  # noqa: E402
    EvalFileError,
    EvalSetError,
    HandattnError,
    Issue,
    MissingExtraError,
    ProblemMismatchError,
    SolveError,
    UnknownProblemError,
    WeightFileError,
)
from handattn.evalset import EvalSet, eval_set_from_texts, read_eval_file, sample_eval_set  # noqa: E402
from handattn.gradient_references import gd_reference, reference_for  # noqa: E402
from handattn.hints import where_to_look  # noqa: E402
from handattn.lens import to_transformer_lens  # noqa: E402
from handattn.model import AttentionModel, Trace  # noqa: E402
from handattn.problems import Problem, get_problem, problem_names, register  # noqa: E402
from handattn.score import Score, Scorer, score  # noqa: E402
from handattn.views.explore import explore  # noqa: E402
from handattn.views.figure import figure  # noqa: E402
from handattn.weights import Head, Weights, dumps, from_dict, load, loads, save  # noqa: E402

__all__ = [
    "AttentionModel",
    "EvalFileError",
    "EvalSet",
    "EvalSetError",
    "Fit",
    "HandattnError",
    "Head",
    "Issue",
    "MissingExtraError",
    "Problem",
    "ProblemMismatchError",
    "Score",
    "Scorer",
    "SolveError",
    "TextView",
    "Trace",
    "UnknownProblemError",
    "WeightFileError",
    "Weights",
    "circuits",
    "dumps",
    "eval_set_from_texts",
    "explore",
    "figure",
    "fit",
    "from_dict",
    "gd_reference",
    "get_problem",
    "inspect_text",
    "load",
    "loads",
    "problem_names",
    "read_eval_file",
    "reference_for",
    "register",
    "sample_eval_set",
    "save",
    "score",
    "to_transformer_lens",
    "where_to_look",
]
