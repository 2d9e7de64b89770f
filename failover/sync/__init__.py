"""Cross-provider bucket migration: the sync engine, its journal, digests, and verify."""

from .engine import ClusterRun, Progress, SyncEngine, SyncOptions, check_locations, default_journal_path, open_locations
from .report import SyncReport
from .throttle import parse_rate
from .verify import VerifyOptions, VerifyReport, run_verify

__all__ = [
    "ClusterRun",
    "Progress",
    "SyncEngine",
    "SyncOptions",
    "SyncReport",
    "VerifyOptions",
    "VerifyReport",
    "check_locations",
    "default_journal_path",
    "open_locations",
    "parse_rate",
    "run_verify",
]
