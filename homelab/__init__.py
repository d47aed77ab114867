"""Homelab orchestrator: many homelab machines, one system."""

__version__ = "0.1.0"
