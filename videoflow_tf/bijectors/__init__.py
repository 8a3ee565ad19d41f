"""Invertible layers of the per-frame flow."""
