"""Scenario files: a scale set, how its simulated instances behave, and a timeline of operator actions."""
