"""PNG contact sheet of an episode: camera frames on top, state/action curves under them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .reader import LeRobotV3Dataset


def write_preview(
    dataset: LeRobotV3Dataset, episode: int, output: str | Path, *, columns: int = 8
) -> Path:
    """Writes ``output`` (PNG): one row of ``columns`` evenly spaced frames per camera, then
    one plot per joint with the state (solid) and action (dashed) over time."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    data = dataset.episode(episode)
    picks = np.unique(np.linspace(0, data.length - 1, min(columns, data.length)).round())
    picks = picks.astype(int)
    frames = {
        cam: dataset.episode_frames(episode, cam, frame_indices=picks) for cam in dataset.cameras
    }
    joints = data.states.shape[1]
    names = dataset.joint_names or tuple(f"joint {i}" for i in range(joints))
    rows = len(frames) + joints
    figure = plt.figure(figsize=(2.0 * len(picks), 1.6 * len(frames) + 1.3 * joints))
    grid = figure.add_gridspec(rows, len(picks), height_ratios=[1.6] * len(frames) + [1.3] * joints)
    for row, (camera, images) in enumerate(frames.items()):
        for col, (index, image) in enumerate(zip(picks, images, strict=True)):
            axis = figure.add_subplot(grid[row, col])
            axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"{camera} #{index} ({data.timestamps[index]:.2f}s)", fontsize=7)
    for joint in range(joints):
        axis = figure.add_subplot(grid[len(frames) + joint, :])
        axis.plot(data.timestamps, data.states[:, joint], label="state", linewidth=1.2)
        axis.plot(data.timestamps, data.actions[:, joint], "--", label="action", linewidth=1.0)
        for index in picks:
            axis.axvline(data.timestamps[index], color="0.85", linewidth=0.6, zorder=0)
        axis.set_ylabel(names[joint], fontsize=7)
        axis.tick_params(labelsize=6)
        if joint == 0:
            axis.legend(fontsize=6, loc="upper right")
    figure.axes[-1].set_xlabel("time [s]", fontsize=7)
    figure.suptitle(f"episode {episode}: {data.task!r} ({data.length} frames)", fontsize=9)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=90)
    plt.close(figure)
    return output
