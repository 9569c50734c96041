"""A layer-4 (TCP) load balancer in front of a scale set's local instances, with connection draining."""

from scaleset.lb.balancer import LoadBalancer

__all__ = ["LoadBalancer"]
