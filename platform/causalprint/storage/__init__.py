"""Storage of every platform file on a local disk or S3, behind one URI-checking, atomically-writing API."""

from causalprint.storage.config import StorageConfig
from causalprint.storage.listing import Entry, Listing, MissingSourceError, SourcePages, list_source
from causalprint.storage.store import FileInfo, Storage
from causalprint.storage.uri import NotARegularFileError, OutsideStorageError, StorageError

__all__ = [
    "Entry",
    "FileInfo",
    "Listing",
    "MissingSourceError",
    "NotARegularFileError",
    "OutsideStorageError",
    "SourcePages",
    "Storage",
    "StorageConfig",
    "StorageError",
    "list_source",
]
