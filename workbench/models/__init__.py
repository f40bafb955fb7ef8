"""Backbones: the registry, weights, and the transfer model (see docs/ARCHITECTURE.md)."""
