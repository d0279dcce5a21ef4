"""Storage of every platform file on a local disk or S3, behind one URI-checking, atomically-writing API."""

from causalprint.storage.config import StorageConfig
from causalprint.storage.store import FileInfo, Storage
from causalprint.storage.uri import OutsideStorageError, StorageError

__all__ = ["FileInfo", "OutsideStorageError", "Storage", "StorageConfig", "StorageError"]
