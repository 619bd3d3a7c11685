"""Grading many weight files at once: the library under `handattn.leaderboard` and `handattn.gradescope`.

    from handattn.grading import GradingOptions, History, grade_folder, write_board
    board = grade_folder("submissions", History("out/history.sqlite"), GradingOptions(secret_seed=...))
    write_board(board, "out")

A live web leaderboard calls the same functions: `grade_folder` for a folder, or `grade_upload`
for one student's upload; both grade untrusted files in forked workers under `Limits`.
"""

from handattn.grading.autograder import AutograderConfig, grade_upload
from handattn.grading.board import Board, grade_folder
from handattn.grading.board_files import write_board
from handattn.grading.history import History
from handattn.grading.options import GradingOptions, Limits
from handattn.grading.ranking import Entry, OverallRow

__all__ = [
    "AutograderConfig",
    "Board",
    "Entry",
    "GradingOptions",
    "History",
    "Limits",
    "OverallRow",
    "grade_folder",
    "grade_upload",
    "write_board",
]
