"""Where a stage's weights start: scratch, one of our checkpoint directories (the output of an
earlier stage), or a released RynnVLA-001 directory (7B-Base after stage 1, 7B-Trajectory after
stage 2; HF `save_pretrained` format, read by the model core's published-format loader).

Our directories: `config.json` with `"format": "rynnvla/1"` + `model.safetensors`, and
optionally `tokenizer.json`, `image_tokenizer/` (with our `decoder.safetensors`) and
`action_vae/`. Stage-1/2 outputs hold the first three; a stage-3 output is a full checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rynnvla_policy.core.checkpoint import (
    ACTION_VAE_DIR,
    IMAGE_TOKENIZER_DIR,
    MODEL_FORMAT,
    CheckpointError,
    load_state_checked,
    read_safetensors,
)
from rynnvla_policy.core.config import RynnVLAConfig
from rynnvla_policy.core.modeling import RynnVLAModel
from rynnvla_policy.core.processor import TOKENIZER_NAME
from rynnvla_policy.core.published import HEAD_KEYS, load_published_model

# Heads whose shape depends on the embodiment: re-initialised when the new stage's state
# size differs (e.g. human wrist keypoints in stage 2 -> robot joints in stage 3).
EMBODIMENT_KEYS = ("state_projection.weight", "state_projection.bias")
PUBLISHED_TOKENIZER_NAMES = ("text_tokenizer.json", TOKENIZER_NAME)


@dataclass
class InitSource:
    kind: str  # "scratch", "ours" or "published"
    path: Path | None = None
    config: RynnVLAConfig | None = None  # the architecture of the init weights
    state: dict[str, torch.Tensor] | None = None
    text_tokenizer: Path | None = None
    image_tokenizer: Path | None = None  # our image_tokenizer/ directory
    action_vae: Path | None = None
    notes: list[str] = field(default_factory=list)


def inspect_init(path: str, base_config: RynnVLAConfig) -> InitSource:
    """Read what `path` provides; `base_config` fills in what a published directory lacks."""
    if not path:
        return InitSource(kind="scratch")
    directory = Path(path)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"--init {directory}: no config.json (not a checkpoint directory)")
    data = json.loads(config_path.read_text())
    if data.get("format") == MODEL_FORMAT:
        return _ours(directory, data)
    if data.get("model_type") == "chameleon":
        return _published(directory, base_config)
    raise CheckpointError(
        f"--init {directory}: config.json is neither ours (format {MODEL_FORMAT!r}) nor a "
        f"published Chameleon/RynnVLA-001 directory (model_type 'chameleon'); "
        f"found format={data.get('format')!r} model_type={data.get('model_type')!r}"
    )


def _ours(directory: Path, data: dict) -> InitSource:
    data = dict(data)
    data.pop("format")
    config = RynnVLAConfig.from_dict(data)
    source = InitSource(
        kind="ours",
        path=directory,
        config=config,
        state=read_safetensors(directory / "model.safetensors"),
    )
    if (directory / TOKENIZER_NAME).is_file():
        source.text_tokenizer = directory / TOKENIZER_NAME
    if (directory / IMAGE_TOKENIZER_DIR / "config.json").is_file():
        source.image_tokenizer = directory / IMAGE_TOKENIZER_DIR
    if (directory / ACTION_VAE_DIR / "config.json").is_file():
        source.action_vae = directory / ACTION_VAE_DIR
    return source


def _published(directory: Path, base_config: RynnVLAConfig) -> InitSource:
    model, report = load_published_model(directory, base_config)
    source = InitSource(
        kind="published",
        path=directory,
        config=model.config,
        state=model.state_dict(),
        notes=[f"published checkpoint {directory}: {report.summary()}"],
    )
    for name in PUBLISHED_TOKENIZER_NAMES:
        if (directory / name).is_file():
            source.text_tokenizer = directory / name
            break
    return source


def apply_init(model: RynnVLAModel, source: InitSource) -> list[str]:
    """Load the init weights into `model` (built with the new stage's config). Returns the
    parameter names left freshly initialised (heads absent from the file, or embodiment heads
    whose shape changed). Any other missing / unexpected / mis-shaped key is an error."""
    if source.state is None:
        return []
    expected = model.state_dict()
    reshaped = [
        key
        for key, value in source.state.items()
        if key in expected and tuple(value.shape) != tuple(expected[key].shape)
    ]
    not_allowed = [k for k in reshaped if k not in EMBODIMENT_KEYS]
    if not_allowed:
        shapes = {k: (tuple(source.state[k].shape), tuple(expected[k].shape)) for k in not_allowed}
        raise CheckpointError(f"--init {source.path}: shapes differ (file, model): {shapes}")
    tensors = {k: v for k, v in source.state.items() if k not in reshaped}
    missing = load_state_checked(model, tensors, str(source.path), allow_missing=HEAD_KEYS)
    return sorted(set(missing) | set(reshaped))
