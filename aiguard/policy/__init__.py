from aiguard.policy.loading import load_policy
from aiguard.policy.models import Policy, RouteRule

__all__ = ["Policy", "RouteRule", "load_policy"]
