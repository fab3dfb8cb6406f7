"""Text tokenizer: Chameleon text_tokenizer.json format, BOS, layout checks, small BPE."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models

from rynnvla_policy.core import get_preset
from rynnvla_policy.core.text_tokenizer import (
    TextTokenizer,
    TokenizerError,
    image_code_from_name,
    image_code_token_name,
)

TINY = get_preset("tiny")
LAYOUT = TINY.model.tokens
CORPUS = ["put the green block on the plate", "put the pen in the pen holder"]


def test_trained_bpe_reserves_ids_and_round_trips(tmp_path):
    tok = TextTokenizer.train(CORPUS, LAYOUT, TINY.text_vocab_size)
    ids = tok.encode("Put the green block on the plate")
    assert ids[0] == LAYOUT.bos_id
    assert all(i > LAYOUT.size_token_base + LAYOUT.max_size_grids for i in ids[1:])
    assert tok.decode(ids) == "put the green block on the plate"
    assert tok.vocab_size <= TINY.text_vocab_size
    tok.save(tmp_path / "tokenizer.json")
    again = TextTokenizer.from_file(tmp_path / "tokenizer.json", LAYOUT)
    assert again.encode("put the pen in the pen holder") == tok.encode(
        "put the pen in the pen holder"
    )
    assert again.image_code_ids.tolist() == list(range(4, 4 + LAYOUT.codebook_size))
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    assert data["model"]["type"] == "BPE"  # the text_tokenizer.json layout
    assert data["model"]["vocab"]["<racm3:break>"] == LAYOUT.image_start_id


def test_unknown_words_still_encode():
    tok = TextTokenizer.train(CORPUS, LAYOUT, TINY.text_vocab_size)
    assert len(tok.encode("stack the yellow cube!")) > 1


def test_image_token_names_follow_chameleon():
    assert image_code_token_name(0) == "IMGIMGAZ"
    assert image_code_token_name(8191) == "IMGIMGIBJBZ"
    assert image_code_from_name("IMGIMGIBJBZ") == 8191
    assert image_code_from_name("<reserved08799>") is None


def _chameleon_like(tmp_path, vocab: dict[str, int]):
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    path = tmp_path / "text_tokenizer.json"
    tok.save(str(path))
    return path


def test_code_map_read_from_image_token_names(tmp_path):
    layout = LAYOUT
    names = sorted(image_code_token_name(k) for k in range(layout.codebook_size))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({name: 4 + i for i, name in enumerate(names)})  # lexicographic, like Chameleon
    vocab.update({"<eoss>": layout.image_end_id, "<racm3:break>": layout.image_start_id, "a": 400})
    tok = TextTokenizer.from_file(_chameleon_like(tmp_path, vocab), layout)
    assert tok.image_code_ids[0] == 4  # "IMGIMGAZ" sorts first
    assert tok.image_code_ids[10] == 4 + names.index(image_code_token_name(10))


def test_layout_mismatch_is_an_error(tmp_path):
    vocab = {"<pad>": 0, "<s>": 1, "a": 2}
    with pytest.raises(TokenizerError, match=r"'<s>' has id 1.*bos_id=0"):
        TextTokenizer.from_file(_chameleon_like(tmp_path, vocab), LAYOUT)


def test_too_large_vocabulary_is_an_error(tmp_path):
    vocab = {"<s>": 0, **{f"t{i}": i + 1 for i in range(LAYOUT.action_id + 1)}}
    with pytest.raises(TokenizerError, match="collide with the VLA tokens"):
        TextTokenizer.from_file(_chameleon_like(tmp_path, vocab), LAYOUT)


def test_empty_instruction_and_missing_file(tmp_path):
    tok = TextTokenizer.train(CORPUS, LAYOUT, TINY.text_vocab_size)
    with pytest.raises(ValueError, match="non-empty"):
        tok.encode("  ")
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        TextTokenizer.from_file(tmp_path / "nope.json", LAYOUT)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(TokenizerError, match="cannot parse"):
        TextTokenizer.from_file(tmp_path / "bad.json", LAYOUT)
