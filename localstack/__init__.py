"""The embedded lab (imported as ``failover.lab``): LocalStack and an S3-compatible server on
127.0.0.1, installed and started from the project's own pinned files, without Docker."""

from .lab import Lab, LabInfo, default_lab_dir
from .servers import LabError, ServerState

__all__ = ["Lab", "LabError", "LabInfo", "ServerState", "default_lab_dir"]
