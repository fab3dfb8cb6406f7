"""Text tokenizer: a `tokenizers` BPE in Chameleon's ``text_tokenizer.json`` format.

Text is encoded as ``[BOS] + BPE(text)`` with no EOS (as published). The 7B preset loads
Chameleon's own file; small presets train a byte-level BPE on the instruction corpus whose
first ids are reserved, in Chameleon's order, for <s>/<pad>/</s>/<unk>, the image codes
(named ``IMGIMG<code in letters>Z`` like Chameleon's), the image delimiters and size tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .config import TokenLayout

# Names Chameleon's text_tokenizer.json gives to the ids a TokenLayout points at.
_LAYOUT_TOKEN_NAMES = {
    "bos_id": "<s>",
    "pad_id": "<pad>",
    "image_end_id": "<eoss>",
    "image_start_id": "<racm3:break>",
}


class TokenizerError(ValueError):
    """The tokenizer file does not match the model's token layout."""


def image_code_token_name(code: int) -> str:
    """Chameleon's name of VQ code ``code``: digits written as letters A-J, closed by Z."""
    return "IMGIMG" + "".join(chr(ord("A") + int(d)) for d in str(code)) + "Z"


def image_code_from_name(name: str) -> int | None:
    """Inverse of ``image_code_token_name``; None for names that are not image tokens."""
    if not (name.startswith("IMGIMG") and name.endswith("Z")):
        return None
    letters = name[len("IMGIMG") : -1]
    if not letters or any(not "A" <= c <= "J" for c in letters):
        return None
    return int("".join(str(ord(c) - ord("A")) for c in letters))


def reserved_token_names(layout: TokenLayout) -> list[str]:
    """Names of ids ``[0, size tokens end]`` of a small layout, in id order."""
    names = ["<s>", "<pad>", "</s>", "<unk>"]
    names += [image_code_token_name(k) for k in range(layout.codebook_size)]
    names += ["<eoss>", "<racm3:break>", "<reserved_newline>"]
    names += [f"<reserved_size{n:03d}>" for n in range(layout.max_size_grids + 1)]
    expected = layout.size_token_base + layout.max_size_grids + 1
    if len(names) != expected or layout.image_code_offset != 4:
        raise TokenizerError(
            "reserved_token_names only supports the small-preset layout "
            f"(got {len(names)} names for {expected} reserved ids)"
        )
    return names


class TextTokenizer:
    """BOS-prefixed BPE encoding of instructions, validated against a TokenLayout."""

    def __init__(self, tokenizer: Tokenizer, layout: TokenLayout) -> None:
        self._tok = tokenizer
        self.layout = layout
        self._validate()
        self.image_code_ids = self._image_code_ids()

    def _validate(self) -> None:
        size = self._tok.get_vocab_size(with_added_tokens=True)
        if size > self.layout.action_id:
            raise TokenizerError(
                f"text tokenizer has {size} tokens but the layout puts ACTION at "
                f"{self.layout.action_id}: text ids would collide with the VLA tokens"
            )
        for field_name, token in _LAYOUT_TOKEN_NAMES.items():
            token_id = self._tok.token_to_id(token)
            expected = getattr(self.layout, field_name)
            if token_id is not None and token_id != expected:
                raise TokenizerError(
                    f"token {token!r} has id {token_id} in the tokenizer file but "
                    f"TokenLayout.{field_name}={expected}"
                )

    def _image_code_ids(self) -> torch.Tensor:
        """(codebook_size,) token id of every VQ code, read from the IMGIMG token names (as
        the reference does); the contiguous layout range when the file has no image tokens."""
        layout = self.layout
        found: dict[int, int] = {}
        for name, token_id in self._tok.get_vocab(with_added_tokens=True).items():
            code = image_code_from_name(name)
            if code is not None:
                found[code] = token_id
        if not found:
            return torch.arange(layout.codebook_size) + layout.image_code_offset
        if sorted(found) != list(range(layout.codebook_size)):
            raise TokenizerError(
                f"tokenizer has {len(found)} IMGIMG image tokens, expected codes "
                f"0..{layout.codebook_size - 1}"
            )
        ids = torch.tensor([found[code] for code in range(layout.codebook_size)])
        outside = [int(i) for i in ids if not layout.is_image_code(int(i))]
        if outside:
            raise TokenizerError(
                f"image tokens at ids {outside[:5]} lie outside the layout's image range "
                f"[{layout.image_code_offset}, {layout.image_code_offset + layout.codebook_size})"
            )
        return ids

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """``[BOS] + ids``; raises on empty text (an empty instruction is a caller bug)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"instruction must be a non-empty string, got {text!r}")
        return [self.layout.bos_id, *self._tok.encode(text, add_special_tokens=False).ids]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        self._tok.save(str(path))

    @classmethod
    def from_file(cls, path: str | Path, layout: TokenLayout) -> TextTokenizer:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"text tokenizer file not found: {path}")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception on bad JSON
            raise TokenizerError(f"cannot parse text tokenizer {path}: {err}") from err
        return cls(tok, layout)

    @classmethod
    def train(cls, corpus: Iterable[str], layout: TokenLayout, vocab_size: int) -> TextTokenizer:
        """Train a small byte-level BPE on ``corpus`` (lower-cased), ids below the reserved
        range kept for special/image tokens; the vocabulary never exceeds ``vocab_size``."""
        reserved = reserved_token_names(layout)
        if vocab_size > layout.action_id:
            raise TokenizerError(f"vocab_size={vocab_size} > layout.action_id={layout.action_id}")
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=reserved, show_progress=False, min_frequency=1
        )
        texts = [t for t in corpus if t.strip()]
        if not texts:
            raise ValueError("cannot train a text tokenizer on an empty corpus")
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok, layout)
