"""scaleset: an Azure VM Scale Set upgrade-policy control plane that runs on one machine."""

__version__ = "0.1.0"
