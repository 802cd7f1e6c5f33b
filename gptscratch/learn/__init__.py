"""Exercises for the learning path (`gptscratch learn`): one per lesson, shipped inside the package.

For each lesson (docs/lessons/01 … 15, and 01b) the learner copies a stub — the function(s) the lesson teaches,
each with its formula, shapes and gptscratch's reference in the docstring, and a body raising
NotImplementedError — writes the bodies, and runs the checks, which compare the learner's functions with
gptscratch's own implementation on seeded random inputs (LLMs-from-scratch's exercises, CS336's autograded
assignments). Every solution passes its checks and every stub fails them (tests/test_learn.py).

    catalog.py     the exercises (ids, lessons, what to write, hints); importable without torch
    checking.py    loading a learner's file, running the checks, the comparisons they use
    workspace.py   the learner's work folder: start (copy a stub), the file to check, progress
    checks/        one module of checks per lesson (lessonNN.py)
    solutions/     exNN_topic.py: one way to write each exercise's functions
    stub.py        the starting file, made from the solution: the same functions and docstrings, bodies emptied

Library code: it returns results and raises gptscratch.errors; `gptscratch/cli/learn.py` prints them.
"""

from .catalog import EXERCISES, Exercise, find_exercise, normalize_id

__all__ = ["EXERCISES", "Exercise", "find_exercise", "normalize_id"]
