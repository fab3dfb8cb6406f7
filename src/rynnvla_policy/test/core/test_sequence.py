"""Token layout of image blocks and of the stage 1/2/3 sequences, labels, collation."""

from __future__ import annotations

import pytest
import torch

from rynnvla_policy.core import LossConfig, TokenBookkeepingError, get_preset
from rynnvla_policy.core.modeling import IGNORE_INDEX
from rynnvla_policy.core.sequence import (
    build_action_sequence,
    build_stage1_sequence,
    collate,
    image_block,
    image_block_length,
)

LAYOUT = get_preset("rynnvla-7b").model.tokens


def test_published_image_block_layout():
    codes = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])  # 2x4 grid of a x16 tokenizer = 32x64 px
    block = image_block(codes, LAYOUT, downsample=16, crop_multiple=32, is_wrist=False)
    assert block[0] == 8197 and block[-1] == 8196
    assert block[1:3] == [8804 + 1, 8804 + 2]  # 32 / 32 = 1, 64 / 32 = 2: <reserved0880n>
    assert block[3:-1] == [4, 5, 6, 7, 8803, 8, 9, 10, 11, 8803]
    wrist = image_block(codes, LAYOUT, 16, 32, is_wrist=True)
    assert (wrist[0], wrist[-1]) == (65537, 65538)
    assert len(block) == image_block_length(2, 4)


def test_640x480_camera_gives_796_tokens():
    assert image_block_length(384 // 16, 512 // 16) == 796


def test_code_map_from_tokenizer_is_used():
    codes = torch.tensor([[0, 1]])
    code_ids = torch.arange(8192).flip(0) + 4
    block = image_block(codes, LAYOUT, 16, 16, False, code_ids=code_ids)
    assert block[3:5] == [8195, 8194]


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (torch.tensor([[8192]]), "outside"),
        (torch.tensor([[1, 2, 3]]), "multiple"),
        (torch.tensor([1, 2]), "grid_h"),
    ],
)
def test_bad_codes_raise(codes, message):
    with pytest.raises(TokenBookkeepingError, match=message):
        image_block(codes, LAYOUT, downsample=16, crop_multiple=32, is_wrist=False)


def _frames(n: int) -> list[list[list[int]]]:
    return [[[100 + 10 * k, 101 + 10 * k], [200 + 10 * k]] for k in range(n)]


def test_stage3_labels_fix_the_reference_defect():
    instr = [0, 50, 51]
    seq = build_action_sequence(instr, _frames(3), LAYOUT, LossConfig(), True)
    s, a = LAYOUT.state_id, LAYOUT.action_id
    assert seq.input_ids == [
        0, 50, 51, 100, 101, 200, s, a,
        0, 50, 51, 110, 111, 210, s, a,
        0, 50, 51, 120, 121, 220, s, a,
    ]  # fmt: skip
    x = IGNORE_INDEX
    assert seq.labels == [
        x, x, x, x, x, x, s, a,
        x, x, x, 110, 111, 210, s, a,
        x, x, x, 120, 121, 220, s, a,
    ]  # fmt: skip
    buggy = build_action_sequence(
        instr, _frames(2), LAYOUT, LossConfig(supervise_repeated_instruction=True), True
    )
    assert buggy.labels[8:11] == [0, 50, 51]


def test_stage3_prompt_ends_at_state_and_instruction_once_option():
    seq = build_action_sequence([0, 7], _frames(2), LAYOUT, LossConfig(), False, False)
    assert seq.input_ids[-1] == LAYOUT.state_id
    assert seq.input_ids.count(0) == 1
    assert seq.input_ids.count(LAYOUT.action_id) == 1


def test_stage1_repeats_instruction_and_supervises_later_frames():
    seq = build_stage1_sequence([0, 9], [[[100, 101]], [[110, 111]]], LossConfig())
    assert seq.input_ids == [0, 9, 100, 101, 0, 9, 110, 111]
    x = IGNORE_INDEX
    assert seq.labels == [x, x, x, x, x, x, 110, 111]


def test_collate_pads_right():
    a = build_stage1_sequence([0], [[[5]]], LossConfig(condition_frames=0))
    b = build_stage1_sequence([0], [[[5]], [[6]]], LossConfig(condition_frames=0))
    batch = collate([a, b], pad_id=1)
    assert batch["input_ids"].tolist() == [[0, 5, 1, 1], [0, 5, 0, 6]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert batch["labels"][0, 2:].tolist() == [IGNORE_INDEX] * 2
    assert batch["labels"][1].tolist() == [IGNORE_INDEX, 5, IGNORE_INDEX, 6]
