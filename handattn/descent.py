"""Gradient descent on the model as defined: the reference a hand-built answer is measured against.

What is fitted: every head's W_Q, W_K, W_V, then W_U and b_U. The embedding (W_E, W_P) and
`scale` stay as given: the one-hot embedding by default, or a starting file's features (so a
fitted file still speaks of "vowel" and "consonant").

Data: the exact next-token distributions of a *training* set, sampled like the public set but
with a seed of its own (never the public seed 0). The objective is its mean KL, the quantity
`check` reports. The public KL is measured once at the end, for the report: no choice is made on it.

Optimiser: full-batch L-BFGS with a strong-Wolfe line search. The objective is smooth,
deterministic and small (under a thousand parameters for the reference shapes), the case L-BFGS
is built for: it reaches in a few hundred steps what plain Adam does not reach in 1,500.

Start: W_Q, W_K, W_V entries ~ N(0, 0.25²), W_U ~ N(0, 0.1²), b_U = 0. Small query and key
weights start every head attending almost evenly. On problem1 with two heads, 8 of seeds 0–11
reach a training KL of 5e-6 in 290–370 steps from this scale, against 3 of seeds 0–6 in 470–615
steps from N(0, 0.5²); from N(0, 1), 1 of 6 gets below 1e-5 within 700 steps.

Restarts: one head converges to the same optimum from every start we tried, but two heads have
poorer local minima (about 2.5e-4, 5e-5 and 2e-5 against under 5e-6 on problem1) that some starts fall
into. So the starts run one after another, each to convergence (50 steps gaining less than 1%)
or to the budget left, and the best one wins; start i uses seed `seed + i`, so
`fit(..., seed=seed + i, restarts=1)` reruns the winner alone. The run ends early once a start
reaches `target_kl`. (Racing starts against each other does not pay: every start first spends a
few hundred steps near the one-head optimum, and which one escapes shows only after that.)

Objective: see `handattn.objective` (a layer without position embedding is evaluated from token
counts, about 4× faster than the model run on whole texts, and held to it by the tests).

Reproducible: the same arguments give the same weights, bit for bit, on one machine and thread
count, unless a time budget cuts the run short.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from handattn.errors import SolveError
from handattn.evalset import DEFAULT_SEED, EvalSet, sample_eval_set
from handattn.model import AttentionModel
from handattn.objective import Objective
from handattn.problems import Problem, get_problem
from handattn.rounding import round_entries
from handattn.score import Scorer
from handattn.weights import Head, Weights
from handattn.weights.core import MAX_HEAD_DIMS, MAX_HEADS
from handattn.weights.expr import MAX_ABS

TRAIN_SEED = 1  # the training set's seed: anything but the public seed 0
TRAIN_TEXTS = 1024
DEFAULT_RESTARTS = 4
DEFAULT_STEPS = 4000  # L-BFGS iterations over all starts
INIT_STD = 0.25  # random start: W_Q, W_K, W_V entries ~ N(0, 0.25²) (see the docstring)
INIT_STD_UNEMBED = 0.1  # W_U entries ~ N(0, 0.1²); b_U starts at 0
CHUNK = 10  # L-BFGS iterations per optimizer.step call; the trajectory does not depend on it
HISTORY = 50  # L-BFGS memory
TOLERANCE_CHANGE = 1e-14  # L-BFGS stops by itself when one step changes the KL by less (nats)
STALL_STEPS, STALL_GAIN = 50, 1e-2  # … and a start has converged when 50 steps gain less than 1%


@dataclass(frozen=True)
class Progress:
    """What a progress display shows; passed to `fit(progress=...)` after every evaluation."""

    steps: int  # L-BFGS iterations so far, over all starts
    max_steps: int
    start: int  # the running start, 0-based
    starts: int
    kl: float  # best training KL so far, over all starts
    seconds: float


@dataclass(frozen=True)
class Fit:
    """The result of `fit`: rounded weights and how good they are."""

    weights: Weights  # entries rounded (see `digits`), ready to save
    problem: str
    train_kl: float  # mean KL on the training set, after rounding
    public_kl: float  # the same on check's default set (seed 0), after rounding
    unrounded_train_kl: float
    digits: dict[str, int]  # significant digits kept, per fitted matrix
    train_source: str  # e.g. "1,024 texts of 32 tokens, seed 1"
    stopped: str  # "target", "converged", "steps", "time" or "interrupted"
    steps: int  # L-BFGS iterations, over all starts
    seconds: float
    seed: int
    restarts: int
    best_seed: int  # fit(..., seed=best_seed, restarts=1, max_steps=best_steps) reruns the winner
    best_steps: int
    kls: tuple[float, ...] = field(default=())  # best training KL of each start that ran

    @property
    def rounding_cost(self) -> float:
        """Relative increase of the training KL caused by rounding (≤ the tolerance asked for)."""
        return self.train_kl / self.unrounded_train_kl - 1 if self.unrounded_train_kl > 0 else 0.0


def fit(
    problem: str | Problem,
    heads: int | None = None,
    d_head: int | None = None,
    d_value: int | None = None,
    *,
    init: Weights | None = None,
    seed: int = 0,
    restarts: int | None = None,
    target_kl: float | None = None,
    max_steps: int = DEFAULT_STEPS,
    max_seconds: float | None = None,
    train_texts: int = TRAIN_TEXTS,
    train_seed: int = TRAIN_SEED,
    tolerance: float = 0.01,
    progress: Callable[[Progress], None] | None = None,
) -> Fit:
    """Fit heads of the given shape (default 1 head of width 1), or improve `init`, by L-BFGS.

    `heads` heads, each with `d_head` query/key dimensions and `d_value` value dimensions
    (default d_head), on the one-hot embedding; or, with `init`, that file's embedding, shapes and
    values as the one start. Stops at `target_kl` (training KL), after `max_steps` L-BFGS
    iterations, after `max_seconds`, when every start has converged, or on Ctrl-C (KeyboardInterrupt):
    every way returns the best weights found, rounded to few significant digits wherever that
    costs at most `tolerance` (relative) of the training KL, and never above a `target_kl` reached.
    Raises SolveError on impossible options.
    """
    problem = get_problem(problem) if isinstance(problem, str) else problem
    shape = _check_options(problem, heads, d_head, d_value, init, seed, restarts, max_steps, train_seed)
    restarts = 1 if init is not None else DEFAULT_RESTARTS if restarts is None else restarts
    train_set = sample_eval_set(problem, train_texts, problem.length, train_seed)
    objective = Objective(train_set)
    search = _Search(objective, target_kl, max_steps, max_seconds, restarts, progress)
    try:
        for i in range(restarts):
            start = init if init is not None else _random_start(problem.name, shape, seed + i)
            if not search.run(i, AttentionModel(start)):
                break
    except KeyboardInterrupt:  # between two starts; inside one, run() stops by itself
        if search.best_weights is None:
            raise
        search.stopped = "interrupted"
    best = _without_unused_features(_within_limits(search.best_weights), train_set)
    train_scorer = Scorer(train_set)
    unrounded = train_scorer(best).kl
    if target_kl is not None and 0 < unrounded <= target_kl:  # a target reached stays reached after rounding
        tolerance = min(tolerance, target_kl / unrounded - 1)
    rounded, digits = round_entries(best, lambda w: train_scorer(w).kl, tolerance)
    return Fit(
        weights=rounded,
        problem=problem.name,
        train_kl=train_scorer(rounded).kl,
        public_kl=Scorer(sample_eval_set(problem, seed=DEFAULT_SEED))(rounded).kl,
        unrounded_train_kl=unrounded,
        digits=digits,
        train_source=f"{train_texts:,} texts of {problem.length} tokens, seed {train_seed}",
        stopped=search.stopped,
        steps=search.steps,
        seconds=search.seconds(),
        seed=seed,
        restarts=restarts,
        best_seed=seed + search.best_start,
        best_steps=search.best_start_steps,
        kls=tuple(search.start_kls),
    )


def _check_options(
    problem, heads, d_head, d_value, init, seed, restarts, max_steps, train_seed
) -> list[tuple[int, int]]:
    """The (d_head, d_value) of every head, or SolveError naming what cannot be done."""
    if init is not None:
        if (heads, d_head, d_value) != (None, None, None):
            raise SolveError("a starting file sets the shapes: give either the file or heads/d_head/d_value")
        if restarts not in (None, 1):
            raise SolveError("a starting file is the one start: restarts must be 1")
        if init.problem != problem.name:
            raise SolveError(f"the starting weights are for {init.problem}, not {problem.name}")
        return [(h.d_head, h.d_value) for h in init.heads]
    heads = 1 if heads is None else heads
    d_head = 1 if d_head is None else d_head
    d_value = d_head if d_value is None else d_value
    for name, value, limit in (
        ("heads", heads, MAX_HEADS),
        ("d_head", d_head, MAX_HEAD_DIMS),
        ("d_value", d_value, MAX_HEAD_DIMS),
    ):
        if not 0 <= value <= limit:
            raise SolveError(f"{name} must be 0…{limit} (weight files allow at most {limit}), not {value}")
    if restarts is not None and restarts < 1:
        raise SolveError(f"restarts must be at least 1, not {restarts}")
    if seed < 0 or max_steps < 0:
        raise SolveError("seed and the step budget must not be negative")
    if train_seed == DEFAULT_SEED:
        raise SolveError(f"the training set must not be the public set (seed {DEFAULT_SEED}): choose another seed")
    return [(d_head, d_value)] * heads


def _random_start(problem: str, shape: list[tuple[int, int]], seed: int) -> Weights:
    g = torch.Generator().manual_seed(seed)

    def normal(rows: int, cols: int, std: float) -> torch.Tensor:
        return torch.randn(rows, cols, generator=g, dtype=torch.float64) * std  # [rows, cols]

    d_model = len(Weights(problem).features)  # the one-hot embedding
    heads = [
        Head(normal(d_model, k, INIT_STD), normal(d_model, k, INIT_STD), normal(d_model, v, INIT_STD)) for k, v in shape
    ]
    return Weights(problem, heads, normal(d_model + sum(v for _, v in shape), 28, INIT_STD_UNEMBED))


def _within_limits(weights: Weights) -> Weights:
    """Clip fitted entries to the weight-file limit (never reached in practice: ±1e6)."""
    clip = lambda m: m.clamp(-MAX_ABS, MAX_ABS)  # noqa: E731
    heads = [replace(h, W_Q=clip(h.W_Q), W_K=clip(h.W_K), W_V=clip(h.W_V)) for h in weights.heads]
    return replace(weights, heads=heads, W_U=clip(weights.W_U), b_U=clip(weights.b_U), params={})


def _without_unused_features(weights: Weights, train_set: EvalSet) -> Weights:
    """Zero the rows of features no training text ever sets (e.g. the digits' one-hot features in
    problem1): they change nothing on any text the problem can produce, and would be noise in the file."""
    residual = weights.W_E[train_set.tokens]  # [N, T, d_model]
    if weights.W_P is not None:
        residual = residual.clone()
        n = min(residual.shape[1], len(weights.W_P))
        residual[:, :n] += weights.W_P[:n]
    unused = ~(residual != 0).flatten(0, 1).any(0)  # [d_model]
    keep = lambda m: m.masked_fill(unused[:, None], 0.0)  # noqa: E731
    heads = [replace(h, W_Q=keep(h.W_Q), W_K=keep(h.W_K), W_V=keep(h.W_V)) for h in weights.heads]
    n_values = len(weights.W_U) - len(unused)
    W_U = weights.W_U.masked_fill(torch.cat([unused, unused.new_zeros(n_values)])[:, None], 0.0)
    return replace(weights, heads=heads, W_U=W_U)


class _Stop(Exception):
    """Raised inside the L-BFGS closure to end the whole search (target reached or time out)."""


class _Search:
    """Runs starts one after another under a shared budget and keeps the best point evaluated."""

    def __init__(self, objective, target_kl, max_steps, max_seconds, starts, progress):
        self.objective, self.target_kl, self.max_steps = objective, target_kl, max_steps
        self.max_seconds, self.starts, self.progress = max_seconds, starts, progress
        self.t0 = time.perf_counter()
        self.steps, self.stopped = 0, "converged"
        self.best_kl, self.best_weights, self.best_start, self.best_start_steps = math.inf, None, 0, 0
        self.start_kls: list[float] = []

    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def run(self, index: int, model: AttentionModel) -> bool:
        """Optimise one start until it converges or the budget ends; False if the search must stop."""
        model.W_E.requires_grad_(False)
        if model.W_P is not None:
            model.W_P.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.LBFGS(
            params,
            lr=1,
            max_iter=CHUNK,
            max_eval=CHUNK * 30,  # never binds: a strong-Wolfe search makes at most 25 evaluations
            history_size=HISTORY,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=TOLERANCE_CHANGE,
        )
        state = {"best": math.inf, "chunk_from": 0}
        self.start_kls.append(math.inf)

        def start_steps() -> int:  # iterations of this start so far, the current one included
            return opt.state[params[0]].get("n_iter", 0)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = self.objective(model)
            loss.backward()
            kl = loss.item()
            if kl < state["best"]:  # the best point of this start, kept as weights
                state["best"] = self.start_kls[index] = kl
                if kl < self.best_kl:
                    self.best_kl, self.best_weights = kl, model.to_weights()
                    self.best_start, self.best_start_steps = index, start_steps()
            if self.progress is not None:
                steps = self.steps + start_steps() - state["chunk_from"]
                self.progress(Progress(steps, self.max_steps, index, self.starts, self.best_kl, self.seconds()))
            if self.target_kl is not None and self.best_kl <= self.target_kl:
                self.stopped = "target"
                raise _Stop
            if self.max_seconds is not None and self.seconds() > self.max_seconds:
                self.stopped = "time"
                raise _Stop
            return loss

        history = {0: math.inf}  # this start's steps → its best KL then, at chunk ends
        try:
            while self.steps < self.max_steps:
                budget = min(CHUNK, self.max_steps - self.steps)
                opt.param_groups[0]["max_iter"] = budget
                state["chunk_from"] = start_steps()
                opt.step(closure)
                done = start_steps() - state["chunk_from"]
                self.steps += done
                if done < budget:  # L-BFGS stopped on its own: converged (or a flat start)
                    return True
                history[start_steps()] = state["best"]
                earlier = [kl for n, kl in history.items() if n <= start_steps() - STALL_STEPS]
                if earlier and state["best"] >= earlier[-1] * (1 - STALL_GAIN):
                    return True
            self.stopped = "steps"
            return False
        except (_Stop, KeyboardInterrupt) as stop:
            self.steps += start_steps() - state["chunk_from"]  # the steps of the unfinished chunk
            if isinstance(stop, KeyboardInterrupt):
                self.stopped = "interrupted"
            return False
        finally:
            if self.best_weights is None:  # interrupted before the first evaluation finished
                self.best_weights = model.to_weights()
