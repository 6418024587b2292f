"""Continuum Hub package."""
