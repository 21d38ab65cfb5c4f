"""Scaling-law fits (and, later, the sweep) for the sentiment models."""
