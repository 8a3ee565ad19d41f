"""BAIR."""
