"""Primitives by family; each file defines its primitives with all their rules."""
