"""Instruction validation."""

from __future__ import annotations

import pytest

from rynnvla_policy.node.instruction import InstructionError, validate_instruction


def test_valid_instruction_is_stripped():
    assert validate_instruction("  put the pen in the pen holder \t", 64) == (
        "put the pen in the pen holder"
    )


def test_unicode_text_is_fine():
    assert validate_instruction("把草莓放进碗里", 64) == "把草莓放进碗里"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "instruction is empty"),
        ("   \t ", "instruction is empty"),
        ("x" * 65, "65 characters, more than max_instruction_chars=64"),
        ("pick\nplace", "control character U+000A at position 4"),
        ("bad\x00byte", "control character U+0000"),
        ("rtl\u202eoverride", "control character U+202E"),
        ("broken \ufffd text", "not valid UTF-8 (U+FFFD replacement character at position 7)"),
        (b"\xff\xfe bytes", "not valid UTF-8 (invalid start byte at byte 0)"),
    ],
)
def test_refused(text, fragment):
    with pytest.raises(InstructionError, match=None) as info:
        validate_instruction(text, 64)
    assert fragment in str(info.value)


def test_utf8_bytes_are_decoded():
    assert validate_instruction(b"put the block", 64) == "put the block"
