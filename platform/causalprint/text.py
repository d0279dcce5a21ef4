"""Untrusted text (file names, echoed input) made safe to print: control and bidirectional characters escaped,
long values cut.

A file name may hold a newline (which forges a table row), an escape sequence (which clears a terminal or
recolours it) or a right-to-left override (which shows ``gnp.exe`` as ``exe.png``); printed through
:func:`printable`, each shows as its escape (``\\n``, ``\\x1b``, ``\\u202e``) instead of acting.
"""

from __future__ import annotations

import unicodedata

# Format characters that reorder or hide text: bidi embeddings, overrides and isolates, zero-width joiners.
_BIDI = frozenset("\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")


def _escape(char: str) -> str:
    code = ord(char)
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1), line/paragraph separator and bidi or zero-width
    format character written as its Python escape; a lone surrogate (an undecodable byte) too."""
    out = []
    for char in str(text):
        category = unicodedata.category(char)
        unsafe = category in ("Cc", "Zl", "Zp", "Cs") or char in _BIDI
        out.append(_escape(char) if unsafe else char)
    return "".join(out)


def markdown_cell(text: str) -> str:
    """:func:`printable`, with ``|`` escaped so that the value stays in its Markdown table cell."""
    return printable(text).replace("|", "\\|")


def cut(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
