"""Provider adapters, one sub-package per adapter (imported as ``failover.providers.<name>``).

Nothing outside this package imports an SDK (boto3, libcloud); each adapter converts its SDK's errors
into :mod:`failover.errors` in its own ``errors`` module.
"""
