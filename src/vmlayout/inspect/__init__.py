"""Inspectors: decode artifacts back, cross-check, diff, explain and draw layouts."""
