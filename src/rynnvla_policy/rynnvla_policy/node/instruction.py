"""Validation of the language instruction (pure)."""

from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"


class InstructionError(ValueError):
    """The instruction is refused; the message says why."""


def validate_instruction(text: str | bytes, max_chars: int) -> str:
    """The instruction, stripped of surrounding whitespace, or InstructionError.

    Refused: not valid UTF-8, empty or only whitespace, longer than max_chars, or containing
    control characters (line breaks included: one instruction is one line of text).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InstructionError(
                f"instruction is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from exc
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InstructionError("instruction is not valid UTF-8 (contains surrogate code points)")
    if REPLACEMENT in text:
        # rclpy decodes string fields with errors="replace": invalid bytes arrive as U+FFFD.
        raise InstructionError(
            f"instruction is not valid UTF-8 (U+FFFD replacement character at position "
            f"{text.index(REPLACEMENT)})"
        )
    stripped = text.strip()
    if not stripped:
        raise InstructionError("instruction is empty")
    if len(stripped) > max_chars:
        raise InstructionError(
            f"instruction has {len(stripped)} characters, more than max_instruction_chars={max_chars}"
        )
    for index, char in enumerate(stripped):
        # Cc: C0/C1 controls; Cf: invisible format characters (bidi overrides, ...),
        # except the zero-width joiner that some scripts and emoji need.
        if unicodedata.category(char) in ("Cc", "Cf") and char != "\u200d":
            raise InstructionError(
                f"instruction contains the control character U+{ord(char):04X} at position {index}"
            )
    return stripped
