"""Training: one trainer for every stage (`rynnvla-train {vqgan,vae,stage1,stage2,stage3}`).

- `config.py` / `config_tree.py`: the stage-independent config blocks and their YAML / `--set`
  overrides; `stages/`: each stage's model + data blocks, `build()` and named presets.
- `trainer.py`: the loop (gradient accumulation, DDP / FSDP, NaN guard, logging, previews,
  checkpoints, export); `train_state.py` + `checkpoint_io.py`: atomic, exactly resumable
  checkpoints; `distributed.py`: torchrun process groups and model wrapping.
- `models/`: training-only modules (VLA training wrapper, trainable VQGAN + decoder).
"""
