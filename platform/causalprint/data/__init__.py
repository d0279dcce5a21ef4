"""Datasets of images read from storage."""

from causalprint.data.collection import COLUMNS, IMAGE_SUFFIXES, decode_rows, read_collection

__all__ = ["COLUMNS", "IMAGE_SUFFIXES", "decode_rows", "read_collection"]
