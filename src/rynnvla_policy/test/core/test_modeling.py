"""RynnVLAModel: KV-cache equality, token bookkeeping errors, loss terms, residual dropout."""

from __future__ import annotations

import pytest
import torch

from rynnvla_policy.core import RynnVLAModel, TokenBookkeepingError, get_preset
from rynnvla_policy.core.image_positions import grid_positions
from rynnvla_policy.core.modeling import IGNORE_INDEX, crop_cache
from rynnvla_policy.core.presets import reserved_token_count
from rynnvla_policy.core.sequence import image_block

CFG = get_preset("tiny").model
TOK = CFG.tokens


def _model(**loss_changes) -> RynnVLAModel:
    torch.manual_seed(0)
    cfg = CFG.replace(loss=CFG.loss.replace(**loss_changes)) if loss_changes else CFG
    return RynnVLAModel(cfg)


def _prompt(length: int = 40, seed: int = 0) -> torch.Tensor:
    """Random text tokens ending with STATE (no image blocks: these may be split anywhere)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(reserved_token_count(TOK), TOK.action_id, (1, length), generator=gen)
    ids[0, -1] = TOK.state_id
    return ids


def _image_prompt() -> tuple[torch.Tensor, int, int]:
    """[instruction][front block][wrist block][STATE], the instruction's and front's ends."""
    gen = torch.Generator().manual_seed(3)
    codes = torch.randint(0, TOK.codebook_size, (2, 8, 10), generator=gen)
    instruction = [TOK.bos_id, *range(reserved_token_count(TOK), reserved_token_count(TOK) + 6)]
    front = image_block(codes[0], TOK, 8, 16, is_wrist=False)
    wrist = image_block(codes[1], TOK, 8, 16, is_wrist=True)
    ids = torch.tensor([[*instruction, *front, *wrist, TOK.state_id]])
    return ids, len(instruction), len(instruction) + len(front)


def _batch(frames: int = 2) -> dict[str, torch.Tensor]:
    """Two sequences of `frames` x [8 image tokens][STATE][ACTION]."""
    gen = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(2):
        row = []
        for _ in range(frames):
            row += [
                *torch.randint(4, 200, (8,), generator=gen).tolist(),
                TOK.state_id,
                TOK.action_id,
            ]
        rows.append(row)
    ids = torch.tensor(rows)
    labels = ids.clone()
    labels[:, :8] = IGNORE_INDEX
    return {
        "input_ids": ids,
        "labels": labels,
        "states": torch.randn(2 * frames, CFG.state_dim, generator=gen),
        "action_targets": torch.randn(2 * frames, CFG.action_latent_dim, generator=gen),
    }


@torch.no_grad()
def test_cached_prefix_gives_the_same_hidden_states_as_no_cache():
    model = _model().eval()
    ids = _prompt()
    states = torch.randn(1, CFG.state_dim)
    embeds = model.embed(ids, states)
    full = model.model(embeds)  # (1, S, H)
    cache = model.encode_prefix(ids[:, :12])
    suffix = model.model(embeds[:, 12:], past_key_values=cache)
    torch.testing.assert_close(suffix, full[:, 12:], rtol=1e-5, atol=1e-5)
    cache.crop(-(ids.shape[1] - 12))
    last = model.model(embeds[:, 12:], past_key_values=cache, last_position_only=True)
    torch.testing.assert_close(last, full[:, -1:], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_prefix_cache_is_reused_unchanged_across_steps():
    model = _model().eval()
    ids = _prompt()
    cache = model.encode_prefix(ids[:, :10])
    first = model.predict_action_params(ids[:, 10:], torch.zeros(1, 6), cache)
    assert cache.get_seq_length() == 10
    other = _prompt(seed=5)
    model.predict_action_params(other[:, 10:], torch.ones(1, 6), cache)
    again = model.predict_action_params(ids[:, 10:], torch.zeros(1, 6), cache)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    naive, logits = model.predict_action_params_naive(ids, torch.zeros(1, 6))
    torch.testing.assert_close(first, naive, rtol=1e-5, atol=1e-5)
    assert logits.shape == (1, ids.shape[1], CFG.backbone.vocab_size)


@torch.no_grad()
def test_prompt_in_layer_pipelined_chunks_equals_one_pass():
    """Two chunks run layer by layer (as the two CPU streams do: chunk 2's layer i right after
    chunk 1's) give the one-pass action params; the cache is cropped back per layer."""
    model = _model().eval()
    ids = _prompt(60)
    ids[0, 20] = TOK.state_id  # a STATE inside chunk 1 (an older frame)
    states = torch.randn(2, CFG.state_dim)
    cache = model.encode_prefix(ids[:, :8])
    one_pass = model.predict_action_params(ids[:, 8:], states, cache)
    first = model.chunk_layers(ids[:, 8:30], states[:1], cache, "cache")
    second = model.chunk_layers(ids[:, 30:], states[1:], cache, "last")
    for index in range(len(model.model.layers)):
        next(first)
        assert cache.layers[index].get_seq_length() == 30
        hidden = next(second)
        assert cache.layers[index].get_seq_length() == 60
    assert hidden.shape == (1, 1, CFG.backbone.hidden_size)
    assert [layer.get_seq_length() for layer in cache.layers] == [60] * len(cache.layers)
    torch.testing.assert_close(model.action_params(hidden), one_pass, rtol=1e-5, atol=1e-5)
    crop_cache(cache, 8)
    assert [layer.get_seq_length() for layer in cache.layers] == [8] * len(cache.layers)
    again = model.predict_action_params(ids[:, 8:], states, cache)
    torch.testing.assert_close(again, one_pass, rtol=0, atol=0)


@torch.no_grad()
def test_chunk_ending_the_prompt_must_end_with_state():
    model = _model().eval()
    ids = _prompt()
    cache = model.encode_prefix(ids[:, :8])
    with pytest.raises(TokenBookkeepingError, match="STATE"):
        next(model.chunk_layers(ids[:, 8:-1], None, cache, "last"))
    with pytest.raises(ValueError, match="final must be"):
        model.model.run_layer(3, torch.zeros(1, 2, 192), None, cache, "logits")


@torch.no_grad()
def test_layer_inputs_are_memoised_per_layout_and_equal_fresh_ones():
    model = _model().eval()
    cache = model.encode_prefix(_prompt()[:, :8])
    embeds = torch.zeros(1, 30, CFG.backbone.hidden_size)
    first = model.model.layer_inputs(embeds, cache, 8)
    assert model.model.layer_inputs(embeds, cache, 8) is first
    model.model._layer_inputs_memo.clear()
    with torch.enable_grad():  # training never uses the memo
        fresh = model.model.layer_inputs(embeds, cache, 8)
    assert fresh is not first and not model.model._layer_inputs_memo
    torch.testing.assert_close(fresh.position_ids, torch.arange(8, 38)[None], rtol=0, atol=0)
    torch.testing.assert_close(fresh.cos, first.cos, rtol=0, atol=0)
    torch.testing.assert_close(fresh.mask, first.mask, rtol=0, atol=0)


def test_state_tokens_and_states_must_match():
    model = _model()
    with pytest.raises(TokenBookkeepingError, match="tokens 1, states 2"):
        model.embed(_prompt(), torch.zeros(2, 6))
    with pytest.raises(TokenBookkeepingError, match=r"\(N, 6\)"):
        model.embed(_prompt(), torch.zeros(1, 5))


def test_action_must_follow_state_and_targets_must_match():
    model = _model()
    batch = _batch()
    batch["action_targets"] = batch["action_targets"][:3]
    with pytest.raises(TokenBookkeepingError, match="tokens 4, targets 3"):
        model(batch)
    batch = _batch()
    batch["input_ids"][0, 8] = 5  # STATE replaced: ACTION now follows an image token
    batch["states"] = batch["states"][1:]
    with pytest.raises(TokenBookkeepingError, match="must follow a STATE"):
        model(batch)


def test_loss_terms_are_reported_and_summed_with_their_weights():
    model = _model(z_loss_weight=0.5, action_weight=2.0).eval()
    loss, metrics = model(_batch())
    expected = metrics["ce_loss"] + 2.0 * metrics["action_loss"] + 0.5 * metrics["z_loss"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert metrics["z_loss"] > 0 and metrics["action_loss"] > 0 and metrics["ce_loss"] > 0


def test_action_loss_kept_when_z_loss_is_off():
    """Reference defect: the action loss was only added inside the z-loss branch."""
    model = _model(z_loss_weight=0.0).eval()
    loss, metrics = model(_batch())
    assert metrics["z_loss"] == 0.0
    assert loss.item() == pytest.approx(metrics["ce_loss"] + metrics["action_loss"], rel=1e-5)
    loss.backward()
    assert model.action_head.weight.grad.abs().sum() > 0
    assert model.state_projection.weight.grad.abs().sum() > 0


def test_bf16_autocast_training_step_matches_fp32():
    """Training under bf16 autocast (the tiny CPU recipe): STATE embeddings come out of the
    projection in bf16 and are put back in fp32 embeddings; the loss stays close to fp32."""
    model, batch = _model(), _batch()
    model.eval()  # no dropout: the two passes must see the same network
    with torch.no_grad():
        fp32, _ = model(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = model(batch)
    bf16.backward()
    assert bf16.dtype == torch.float32
    assert abs(bf16.item() - fp32.item()) < 0.02 * abs(fp32.item())
    assert model.state_projection.weight.grad.abs().sum() > 0


def test_residual_dropout_only_in_training():
    model = _model()
    assert model.config.backbone.residual_dropout > 0
    batch = _batch()
    model.train()
    first, _ = model(batch)
    second, _ = model(batch)
    assert first.item() != second.item()
    model.eval()
    assert model(batch)[0].item() == model(batch)[0].item()


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = _batch()
    grads = []
    for enabled in (False, True):
        model = _model().train()
        model.model.set_gradient_checkpointing(enabled)
        torch.manual_seed(7)
        loss, _ = model(batch)
        loss.backward()
        grads.append(model.model.layers[0].mlp.up_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_7b_preset_has_the_published_size():
    with torch.device("meta"):
        model = RynnVLAModel(get_preset("rynnvla-7b").model)
    params = model.num_parameters()
    assert 7.0e9 < params < 7.2e9
    assert model.state_projection.weight.shape == (4096, 6)
    assert model.action_head.weight.shape == (64, 4096)
    assert model.model.layers[0].self_attn.q_norm.weight.shape == (32, 128)


@torch.no_grad()
def test_image_positions_survive_the_prefix_cache_and_camera_chunks():
    model = _model().eval()
    assert model.image_positions is not None  # the tiny preset has them
    ids, prefix, front_end = _image_prompt()
    states = torch.randn(1, CFG.state_dim)
    no_cache = model.predict_action_params(ids, states)
    cache = model.encode_prefix(ids[:, :prefix])
    cached = model.predict_action_params(ids[:, prefix:], states, cache)
    torch.testing.assert_close(cached, no_cache, rtol=1e-5, atol=1e-5)
    first = model.chunk_layers(ids[:, prefix:front_end], None, cache, "cache")
    second = model.chunk_layers(ids[:, front_end:], states, cache, "last")
    for _ in model.model.layers:
        next(first)
        hidden = next(second)
    torch.testing.assert_close(model.action_params(hidden), no_cache, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_image_positions_are_rows_columns_and_wrist_of_each_block():
    ids, prefix, _ = _image_prompt()
    is_code, row, column, wrist = grid_positions(ids, TOK)
    assert int(is_code.sum()) == 160 and not bool(is_code[0, :prefix].any())
    grid = lambda values: values[0][is_code[0]].view(2, 8, 10)  # noqa: E731
    assert torch.equal(grid(row), torch.arange(8).view(1, 8, 1).expand(2, 8, 10))
    assert torch.equal(grid(column), torch.arange(10).view(1, 1, 10).expand(2, 8, 10))
    assert torch.equal(grid(wrist)[:, 0, 0], torch.tensor([0, 1]))
    # the position embedding changes what a code means by where it is
    model = _model().eval()
    first_code = int(torch.nonzero(is_code[0])[0, 0])
    plain = model.model.embed_tokens(ids)
    embedded = model.embed(ids, torch.zeros(1, CFG.state_dim))
    assert not torch.allclose(embedded[0, first_code], plain[0, first_code])
    assert torch.equal(embedded[0, :prefix], plain[0, :prefix])  # text: unchanged
