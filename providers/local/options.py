"""Options of the ``local`` storage adapter."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LocalStoreOptions"]


class LocalStoreOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = Field(description="directory holding one sub-directory per bucket")
    create_root: bool = Field(default=False, description="create the root directory if it is missing")
    fsync: bool = Field(default=True, description="fsync files and directories before a write is reported done")
