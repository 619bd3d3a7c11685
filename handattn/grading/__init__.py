"""Grading many weight files at once: the leaderboard's and the Gradescope autograder's library."""
