"""Options of the ``local`` storage adapter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LocalComputeOptions", "LocalStoreOptions"]


class LocalStoreOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = Field(description="directory holding one sub-directory per bucket")
    create_root: bool = Field(default=False, description="create the root directory if it is missing")
    fsync: bool = Field(default=True, description="fsync files and directories before a write is reported done")
    normalize_unicode: Literal["NFC", "NFD"] | None = Field(
        default=None,
        description="store names the way a file system that normalises Unicode does (macOS: NFD), "
        "so two spellings of one name are one object",
    )


class LocalComputeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = Field(description="directory holding one sub-directory per instance")
    create_root: bool = False
    first_address: str = Field(default="127.0.0.2", description="loopback addresses are handed out from here")
    last_address: str = "127.0.0.254"
    shell: str = "/bin/bash"
