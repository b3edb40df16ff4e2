"""Audio-only, video-only and fused recognition on SynthActions with sound.

Trains MMAction2's tsn_r18 audio recipe on the videos' own sound (`configs/audio/tsn_r18_audio_synth.yaml`) and a
video model (default: TSN-R18, which averages frames and so cannot tell the direction pairs apart, while the sound
tells a pair's members apart but not the pairs), tests both best checkpoints with `vidlab test --out`, then fuses
the two score files with `vidlab fuse` (equal weights, MMAction2's `report_accuracy`) and prints one table.

Usage:
    vidlab data synth --audio --out data/synth_audio
    python benchmarks/audio_fusion_synth.py [--root data/synth_audio] [--video-config CONFIG] [--work-root DIR]
        [--video-overrides key=value ...] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_temporal import run  # noqa: E402  (train, then test best.pth -> test_results.json)

AUDIO = "configs/audio/tsn_r18_audio_synth.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="data/synth_audio")
    ap.add_argument("--video-config", default="configs/recognition/tsn_r18_synth.yaml")
    ap.add_argument("--work-root", default="work_dirs/audio_fusion")
    ap.add_argument("--video-overrides", nargs="*", default=[], help="key=value for the video recipe only")
    ap.add_argument("--reuse", action="store_true", help="read runs whose test results are already there")
    args = ap.parse_args()
    work, root = Path(args.work_root), [f"data.root={args.root}"]
    rows = {
        "audio": run(AUDIO, root, work, reuse=args.reuse),
        "video": run(args.video_config, root + args.video_overrides, work, reuse=args.reuse),
    }
    files = [str(work / Path(cfg).stem / "test_results.json") for cfg in (AUDIO, args.video_config)]
    fused_out = work / "fused.json"
    cmd = [sys.executable, "-m", "vidlab", "fuse", "--scores", *files, "--out", str(fused_out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rows["fused (audio + video, weights 1 1)"] = {"test": json.loads(fused_out.read_text())["metrics"]}
    print("| input | test top-1 | test top-1, direction-paired classes | mean class acc | train minutes |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        m, minutes = r["test"], r.get("train_minutes")
        paired = f"{m['paired_top1']:.4f}" if "paired_top1" in m else "-"
        spent = f"{minutes:.1f}" if minutes is not None else "-"
        print(f"| {name} | {m['top1']:.4f} | {paired} | {m['mean_class_acc']:.4f} | {spent} |")
    top1 = {k.split()[0]: r["test"]["top1"] for k, r in rows.items()}
    print("RESULT " + " ".join(f"{k}_top1={v:.4f}" for k, v in top1.items()))


if __name__ == "__main__":
    main()
