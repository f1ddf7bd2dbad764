"""Transforms: autodiff (ad.py, api.py), custom rules and checkpointing (custom.py)."""
