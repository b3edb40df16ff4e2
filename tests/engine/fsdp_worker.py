"""Run under torchrun: ``vidlab.engine.train.train`` for each run of a JSON list, one after the other.

Each run is ``{"work_dir": ..., "overrides": [...], "resume": path or null}`` on the recipe given first. ``train``
joins torchrun's process group and leaves it at its end; the later runs join a fresh gloo group (a FileStore in the
first run's folder), which ``train`` then uses. One launch for several runs saves the launcher's and the
interpreters' start-up per run.
"""

import json
import logging
import os
import sys
from pathlib import Path

import torch.distributed as dist

from vidlab.config import load_config
from vidlab.engine.train import train


def main(recipe: str, runs_json: str) -> None:
    runs = json.loads(Path(runs_json).read_text())
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    for i, run in enumerate(runs):
        if i > 0:
            store = dist.FileStore(str(Path(runs[0]["work_dir"]).parent / f"store_{i}"), world_size)
            dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size)
        cfg = load_config(recipe, [*run["overrides"], f"work_dir={run['work_dir']}"])
        train(cfg, resume=run["resume"])
        log = logging.getLogger("vidlab")
        for handler in list(log.handlers):  # the next run logs to its own work_dir
            log.removeHandler(handler)
            handler.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
