"""Runtimes: where the stages run. local.py runs them in-process; the Ray runtime arrives with issue #5."""
