"""Data: scene generators and dataset formats."""

from .analytic import make_analytic_scene

__all__ = ["make_analytic_scene"]
