"""The core layer: what every app may use and that uses none of them.

Jobs (long operations and their steps), errors, masking of secrets, formatting. Nothing in
here imports devices, scheduling, pooling, marketplace or backups (pyproject.toml's
import-linter contract says so).
"""
