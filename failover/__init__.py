"""failover: a provider-neutral toolkit to evacuate storage, compute and DNS from one hosting provider
to another, verified and resumable, and to rehearse it in CI."""

__version__ = "0.1.0"

__all__ = ["__version__"]
