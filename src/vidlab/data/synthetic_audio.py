"""The sound track of SynthActions with ``--audio``: a tone that depends on the action class, in noise.

Classes share sounds, so sound and picture each leave some classes apart that the other separates: the first member
of every direction pair (moving_left, moving_up, rotating_clockwise, growing, fading_in) sounds one tone, the second
member (moving_right, moving_down, rotating_counterclockwise, shrinking, fading_out) another, bouncing a third, and
static none (noise only). A model that hears only the sound can tell a pair's members apart but not the pairs; a
video model without temporal modelling (TSN) can tell the pairs apart but not their members: their fusion can do
both. Each tone is its base frequency (randomly detuned by up to 3%) plus its octave at half the amplitude, 0.2 peak,
in white noise of standard deviation 0.05-0.3 drawn per video, at 16 kHz mono, as long as the video. Drawn from its
own generator ``default_rng([seed, index, 0xA0D10])``, so the pictures are those of the same dataset without sound.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SAMPLE_RATE", "SOUND_OF_CLASS", "TONES_HZ", "class_sound"]

SAMPLE_RATE = 16000
TONES_HZ: tuple[float | None, ...] = (440.0, 660.0, 990.0, None)  # sound 3: none (noise only)
# class -> sound: first members of the direction pairs 0, second members 1, bouncing 2, static 3
SOUND_OF_CLASS: tuple[int, ...] = (0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3)


def class_sound(label: int, num_frames: int, fps: float, seed: int, index: int) -> np.ndarray:
    """The float32 waveform in [-1, 1] of video ``index`` (class ``label``), ``num_frames / fps`` seconds long."""
    rng = np.random.default_rng([seed, index, 0xA0D10])
    n = int(round(num_frames / fps * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    wave = rng.normal(0.0, rng.uniform(0.05, 0.3), size=n)
    tone = TONES_HZ[SOUND_OF_CLASS[label]]
    if tone is not None:
        f = tone * rng.uniform(0.97, 1.03)
        phase = rng.uniform(0, 2 * np.pi)
        wave += 0.2 * (np.sin(2 * np.pi * f * t + phase) + 0.5 * np.sin(4 * np.pi * f * t + phase)) / 1.5
    return np.clip(wave, -1.0, 1.0).astype(np.float32)
