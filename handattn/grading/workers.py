"""Long-lived worker processes that grade untrusted files, one at a time, under time and memory limits.

The parent builds the evaluation sets first, then forks the workers once: each inherits the sets
and the problem registry copy-on-write and starts in milliseconds (a fresh interpreter would
re-import torch for about a second). A worker loads and scores one file per request and answers
with an `Outcome`. A file that takes longer than its time limit gets its worker killed; one that
needs more memory than its limit fails to allocate; a worker that dies is replaced by a new fork.
Either way the file gets an error outcome and the other files are graded as usual.

The workers set their own process-wide state (one torch thread, ignore Ctrl-C, the memory
limit); the parent's is left alone.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from multiprocessing.connection import Connection, wait

from handattn.grading.options import Limits
from handattn.grading.outcome import Outcome

Work = Callable[[str, bytes], Outcome]  # (problem, file bytes) -> outcome, run inside a worker
_FORK = multiprocessing.get_context("fork")


def default_workers() -> int:
    """The CPUs this process may use: one worker each."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class WorkerPool:
    """`with WorkerPool(work, n, limits) as pool: for key, outcome in pool.run(jobs): ...`"""

    def __init__(self, work: Work, workers: int, limits: Limits):
        self.work, self.limits = work, limits
        self.n_workers = max(1, workers)
        self.workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, jobs: Iterable[tuple[Hashable, str, bytes]]) -> Iterator[tuple[Hashable, Outcome]]:
        """Grade (key, problem, bytes) jobs; yields (key, outcome) as files finish, in any order."""
        queue = deque(jobs)
        while len(self.workers) < min(self.n_workers, len(queue)):
            self.workers.append(_Worker(self.work, self.limits, self.workers))
        idle, busy = list(self.workers), {}
        while queue or busy:
            while queue and idle:
                worker = idle.pop()
                key, problem, data = queue.popleft()
                if not worker.start(key, problem, data):  # it died while idle: replace it, try again
                    worker = self._replace(worker)
                    worker.start(key, problem, data)
                busy[worker.conn] = worker
            timeout = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
            for conn in wait(list(busy), timeout):
                worker = busy.pop(conn)
                key, outcome, restart = worker.finish()
                yield key, outcome
                idle.append(self._replace(worker) if restart else worker)
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if now >= worker.deadline:
                    del busy[conn]
                    key = worker.key
                    worker.kill()
                    message = f"stopped after the {self.limits.seconds:g} s time limit for loading and scoring a file"
                    yield key, Outcome.failure(message, now - worker.started)
                    idle.append(self._replace(worker))

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        new = _Worker(self.work, self.limits, [w for w in self.workers if w is not worker])
        self.workers[self.workers.index(worker)] = new
        return new

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []


class _Worker:
    def __init__(self, work: Work, limits: Limits, others: list[_Worker]):
        self.conn, child = _FORK.Pipe()
        # a forked child inherits every descriptor: it closes the parent's ends of all the pipes, or a
        # worker would never read EOF when the parent hangs up (another process would still hold the end)
        parent_ends = [self.conn, *(w.conn for w in others)]
        args = (child, parent_ends, work, limits)
        self.process = _FORK.Process(target=_serve, args=args, daemon=True, name="handattn-grader")
        self.process.start()
        child.close()
        self.key: Hashable = None
        self.started = self.deadline = 0.0
        self.seconds = limits.seconds

    def start(self, key: Hashable, problem: str, data: bytes) -> bool:
        self.key, self.started = key, time.monotonic()
        self.deadline = self.started + self.seconds
        try:
            self.conn.send((problem, data))
        except OSError:  # BrokenPipeError: the process is gone
            return False
        return True

    def finish(self) -> tuple[Hashable, Outcome, bool]:
        """The answer to the current job: (key, outcome, whether this worker must be replaced)."""
        try:
            outcome, restart = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1)
            return self.key, Outcome.failure(_death(self.process.exitcode), time.monotonic() - self.started), True
        return self.key, outcome, restart

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        self.conn.close()  # an idle worker reads EOF and returns
        self.process.join(0.5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        hint = " (the system may have run out of memory)" if exitcode == -signal.SIGKILL else ""
        return f"the grading process was stopped by {name}{hint}"
    return f"the grading process ended unexpectedly (exit code {exitcode})"


def _serve(conn: Connection, parent_ends: list[Connection], work: Work, limits: Limits) -> None:
    """A worker's life: set its own limits, then answer requests until the parent hangs up."""
    import torch

    for end in parent_ends:
        end.close()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    torch.set_num_threads(1)  # several workers share the cores; one thread each is fastest
    _limit_memory(limits.memory_mib)
    while True:
        try:
            problem, data = conn.recv()
        except (EOFError, OSError):
            return
        start = time.perf_counter()
        restart = False
        try:
            outcome = work(problem, data)
        except Exception as e:  # out of memory, or a bug: the file's error; then start afresh
            out_of_memory = isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "alloc" in str(e))
            message = _memory_message(limits) if out_of_memory else _internal_message(e)
            outcome, restart = Outcome.failure(message, time.perf_counter() - start), True
        try:
            conn.send((outcome, restart))
        except OSError:  # the parent is gone
            return
        if restart:
            return


def _memory_message(limits: Limits) -> str:
    return f"needs more than the {limits.memory_mib:,} MiB memory limit for grading a file"


def _internal_message(e: Exception) -> str:
    return f"internal error while grading ({type(e).__name__}); please report it to the handattn authors"


def _limit_memory(mib: int) -> None:
    """Cap the worker's data segment at what it holds now plus `mib` (Linux; elsewhere no cap)."""
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            data_kib = next(int(line.split()[1]) for line in f if line.startswith("VmData:"))
    except (OSError, StopIteration, ValueError):
        return
    limit = (data_kib << 10) + (mib << 20)
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
