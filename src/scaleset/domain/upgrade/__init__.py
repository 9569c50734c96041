"""Upgrade planners, one per mode, and the rolling-upgrade status they keep."""
