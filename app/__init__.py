"""Vigil: a clinician workstation for several bedside patients at once."""

__version__ = "0.1.0"
