"""Bucket copies on a Dask cluster (``--cluster local:N`` or ``--cluster tcp://HOST:PORT``).

The sync engine's stages are the same with and without a cluster; only where two of them run
changes:

* **list**: the source bucket's key space is split into shards (:mod:`.shards`); each shard is
  listed by a worker, in parallel, and the coordinator records what they return in its journal.
* **decide** and **commit** stay on the coordinator, the machine that runs the command: the
  journal is its one source of truth, every verified mark is committed there, and deletes are
  decided there only after every shard's listing is complete and confirmed.
* **copy** runs on the workers (:mod:`.tasks`), in chunks of objects; a worker returns, with each
  outcome, what its copies would have written to the journal, and the coordinator commits it.

Credentials never travel: a task carries the providers file's text (which holds references only)
and the locations; each worker resolves the references from its own environment or AWS profile.
A lost worker costs what it had in flight: Dask runs its chunk again elsewhere, and a multipart
upload it began is found (by the intent the coordinator recorded before the chunk left) and
aborted or resumed.
"""

from .spec import ClusterSpec, parse_cluster

__all__ = ["ClusterSpec", "parse_cluster"]
