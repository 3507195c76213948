"""Models: one estimator interface (``DigitModel``) and a registry shared by CLI, benchmark and app."""

from .base import REGISTRY, DigitModel, available, create, load

__all__ = ["REGISTRY", "DigitModel", "available", "create", "load"]
