"""Datasets of images read from storage, and the partitioned results every job writes and reads back
(:mod:`causalprint.data.parts`)."""

from causalprint.data.collection import COLUMNS, IMAGE_SUFFIXES, decode_rows, read_collection

__all__ = ["COLUMNS", "IMAGE_SUFFIXES", "decode_rows", "read_collection"]
