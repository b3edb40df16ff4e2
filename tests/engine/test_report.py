"""`vidlab report`: the self-contained HTML page of a training run's work dir, read as a parser and a browser see it."""

import json
import logging
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vidlab
from tests.conftest import run_cli, write_tiny_recipe
from vidlab.config import Config, save_config, to_dict
from vidlab.engine import checkpoint as ckpt
from vidlab.engine.evaluate import write_results
from vidlab.engine.report import SECTIONS, read_run, render_report, write_report
from vidlab.engine.train import _log_start, _write_epoch, setup_logging
from vidlab.errors import InputError, MissingFileError

HOSTILE = "<script>alert('x')</script>"
CLASSES = ["walk", "run", "jump", "<b>wave</b>"]
LABELS = [0, 0, 1, 1, 2, 2, 3, 3]
PREDICTED = [0, 0, 1, 2, 2, 2, 3, 0]  # per class: 2/2, 1/2, 2/2, 1/2


class Page(HTMLParser):
    """The parts of a page the tests look at: section ids, headings, images, links, table rows per section."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.sections, self.h2, self.imgs, self.hrefs, self.scripts = [], [], [], [], 0
        self.rows: dict[str, list[list[str]]] = {}
        self.text: dict[str, str] = {}
        self._tag, self._row, self._cell = None, None, None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        self.scripts += tag == "script"
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if key in attrs and tag != "img":
                self.hrefs.append(attrs[key])
        if tag == "tr":
            self._row = []
        if tag in ("td", "th"):
            self._cell = ""
        self._tag = tag

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        if tag == "tr" and self.sections:
            self.rows.setdefault(self.sections[-1], []).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._tag == "h2":
            self.h2.append(data)
            self._tag = None
        if self._cell is not None:
            self._cell += data
        if self.sections:
            self.text[self.sections[-1]] = self.text.get(self.sections[-1], "") + data


def _history() -> list[dict]:
    return [
        {"epoch": e, "loss": 2.0 / e, "lr": 0.01 * (3 - e) / 2, "train_time_s": 1.5 + e, "precision": "fp32",
         "val_top1": 0.2 * e, "val_top5": 0.5 + 0.1 * e, "val_mean_class_acc": 0.15 * e}
        for e in (1, 2, 3)
    ]  # fmt: skip


def _write_log(work_dir: Path, history: list[dict]) -> None:
    """train.log through the trainer's own logging set-up, opening line and per-epoch writer (which also writes
    metrics.jsonl)."""
    logger = logging.getLogger("vidlab")
    handlers, level = list(logger.handlers), logger.level
    for handler in handlers:
        logger.removeHandler(handler)
    try:
        setup_logging(work_dir, True)
        loader = SimpleNamespace(dataset=[None] * 24)
        info = SimpleNamespace(world_size=1, device=torch.device("cpu"))
        optimizer = SimpleNamespace(param_groups=[{"lr": 0.01}])
        cfg = SimpleNamespace(model=SimpleNamespace(name="tsn_r18"))
        _log_start(cfg, SimpleNamespace(name="recognition"), loader, loader, info, 8, optimizer, "none", ())
        for record in history:
            _write_epoch(work_dir, record, {"skipped": []}, [], None)
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(level)


def _write_test_results(path: Path) -> None:
    scores = np.full((len(LABELS), len(CLASSES)), 0.1)
    scores[np.arange(len(LABELS)), PREDICTED] = 0.7
    meta = {"config": "tsn_r18", "checkpoint": "best.pth", "split": "test", "task": "recognition",
            "average_clips": "prob", "precision": "fp32", "skipped": []}  # fmt: skip
    metrics = {"top1": 0.75, "top5": 1.0, "mean_class_acc": 0.75}
    write_results(path, scores, np.array(LABELS), [f"v{i}.mp4" for i in range(len(LABELS))], metrics, meta)


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    """A finished 3-epoch run's work dir, written by the trainer's and `vidlab test`'s own writers: config.yaml,
    train.log and metrics.jsonl, epoch_3.pth (history, config, self-describing meta) and test_results.json."""
    work = tmp_path_factory.mktemp("report") / "run"
    work.mkdir()
    cfg = Config()
    cfg.model.name, cfg.model.num_classes, cfg.work_dir, cfg.train.epochs = "tsn_r18", 4, str(work), 3
    cfg.data.source_name = HOSTILE  # a config value that must come out as text
    save_config(cfg, work / "config.yaml")
    history = _history()
    _write_log(work, history)
    meta = {"model": "tsn_r18", "num_classes": 4, "kwargs": {}, "classes": CLASSES, "task": {"name": "recognition"},
            "vidlab_version": vidlab.__version__}  # fmt: skip
    state = {"model": {"fc.weight": torch.zeros(4, 8)}, "epoch": 3, "history": history, "config": to_dict(cfg),
             "best": {"metric": "top1", "value": 0.6, "epoch": 3}, "meta": meta}  # fmt: skip
    ckpt.save_checkpoint(state, work / "epoch_3.pth")
    _write_test_results(work / "test_results.json")
    return work


@pytest.fixture(scope="module")
def report(work_dir) -> Path:
    return write_report(work_dir)


def test_report_has_every_section_and_embeds_its_figures(report, work_dir):
    assert report == work_dir / "report.html"
    text = report.read_text()
    page = Page(text)
    assert page.sections == [sid for sid, _ in SECTIONS]
    assert page.h2 == [name for _, name in SECTIONS]
    assert len(page.imgs) == 3  # curves, per-class accuracy, confusion matrix
    assert all(src.startswith("data:image/png;base64,") and len(src) > 2000 for src in page.imgs)
    assert page.scripts == 0 and all(href.startswith("#") for href in page.hrefs)  # nothing outside the file
    assert "http://" not in text and "https://" not in text
    assert page.text["summary"].count("missing") == 0 and 'class="missing"' not in text


def test_report_escapes_config_and_class_names(report):
    text = report.read_text()
    assert HOSTILE not in text and "<b>wave</b>" not in text
    assert html_escaped(HOSTILE) in text
    page = Page(text)
    assert f"source_name: {HOSTILE}" in page.text["config"]  # shown as the YAML says, as text
    assert "<b>wave</b>" in page.text["per-class-accuracy"]


def html_escaped(value: str) -> str:
    import html

    return html.escape(value)


def test_report_tables_hold_the_runs_numbers(report):
    page = Page(report.read_text())
    per_class = page.rows["per-class-accuracy"]
    assert per_class[0] == ["class", "name", "videos", "correct", "accuracy"]
    assert per_class[1:] == [["0", "walk", "2", "2", "1"], ["1", "run", "2", "1", "0.5"],
                             ["2", "jump", "2", "2", "1"], ["3", "<b>wave</b>", "2", "1", "0.5"]]  # fmt: skip
    assert "class names: meta of epoch_3.pth" in page.text["per-class-accuracy"]
    confusions = page.rows["confusion-matrix"]
    assert sorted(confusions[1:]) == [["<b>wave</b>", "walk", "1", "0.5"], ["run", "jump", "1", "0.5"]]
    curves = page.rows["curves"]
    assert curves[0][:4] == ["epoch", "loss", "lr", "train_time_s"] and [r[0] for r in curves[1:]] == ["1", "2", "3"]
    summary = dict(r[:2] for r in page.rows["summary"])
    assert summary["epochs done"] == "3 of 3" and summary["best checkpoint"] == "top1 0.6 at epoch 3"
    assert summary["model"] == "tsn_r18" and summary["test_results.json"] == "test"
    env = {r[0]: r[1] for r in page.rows["environment"][1:]}
    assert env["vidlab version"] == vidlab.__version__ and env["processes"] == "1" and env["global batch"] == "8"
    assert env["precision per epoch"] == "fp32" and env["CPU capability"] == torch.backends.cpu.get_cpu_capability()
    assert "This machine, at report time (not recorded by the run)" in page.text["environment"]
    timings = page.rows["timings"]
    assert [r[:2] for r in timings[1:4]] == [["1", "2.5"], ["2", "3.5"], ["3", "4.5"]]
    assert ["training steps, all epochs (s)", "10.5", "sum of metrics.jsonl train_time_s"] in timings


def test_missing_inputs_give_sections_that_say_so(tmp_path, work_dir):
    """Only a config: every section is there, those without their input say what is missing; a corrupt checkpoint
    and a broken metrics line are reported, not raised."""
    only = tmp_path / "only_config"
    only.mkdir()
    shutil.copy(work_dir / "config.yaml", only / "config.yaml")
    page = Page(render_report(only))
    assert page.sections == [sid for sid, _ in SECTIONS] and page.imgs == []
    assert "no training history" in page.text["curves"]
    assert "no results file" in page.text["per-class-accuracy"] and "no results file" in page.text["confusion-matrix"]
    assert "no checkpoint" in page.text["summary"] and "no train.log" in page.text["timings"]
    assert HOSTILE in page.text["config"]

    (only / "epoch_1.pth").write_bytes(b"not a checkpoint")
    (only / "metrics.jsonl").write_text(json.dumps(_history()[0]) + "\n{broken\n")
    page = Page(render_report(only))
    assert "cannot read checkpoint epoch_1.pth" in page.text["summary"]
    assert "1 line(s) that are not JSON" in page.text["curves"] and len(page.rows["curves"]) == 2


def test_results_given_on_the_command_line(tmp_path, work_dir, cli_inprocess):
    other = tmp_path / "val_results.json"
    _write_test_results(other)
    out = tmp_path / "sub" / "r.html"
    r = cli_inprocess("report", str(work_dir), "--out", str(out), "--results", str(other))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"report: {out}"
    page = Page(out.read_text())
    assert "val_results.json" in page.text["per-class-accuracy"] and "test_results.json" not in page.text["summary"]
    multi = tmp_path / "multi.json"
    write_results(multi, np.zeros((2, 3)), np.array([[1, 0, 1], [0, 1, 0]]), ["a", "b"], {"mAP": 0.5}, {})
    page = Page(render_report(work_dir, [multi]))
    assert "multi-label results" in page.text["per-class-accuracy"] and page.imgs[1:] == []


def test_not_a_work_dir_is_a_clear_error(tmp_path, cli_inprocess):
    with pytest.raises(InputError, match=re.escape(f"{tmp_path} is not a vidlab work dir")):
        read_run(tmp_path)
    with pytest.raises(MissingFileError, match="work dir not found"):
        read_run(tmp_path / "nowhere")
    (tmp_path / "config.yaml").write_text("model: {name: tsn_r18}\n")
    (tmp_path / "notes.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="notes.json is not a `vidlab test --out` results file"):
        read_run(tmp_path, [tmp_path / "notes.json"])
    assert read_run(tmp_path).results == []  # found in the work dir, not a results file: left out
    r = cli_inprocess("report", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and r.stderr.startswith("vidlab report: error: work dir not found")


def test_log_sessions_give_wall_times_across_a_resume_and_midnight(tmp_path):
    start = "training tsn_r18 (recognition task): 24 train / 8 val videos, 2 processes, global batch 8, lr 0.01, "
    (tmp_path / "train.log").write_text(
        f"23:59:50 INFO {start}precision fp32 (CPU AVX2 kernels)\n"
        "23:59:58 INFO epoch 1: loss=1 lr=0.01\n"
        "00:00:10 INFO epoch 2: loss=1 lr=0.01\n"
        "08:00:00 INFO resumed from run/epoch_2.pth at epoch 2\n"
        f"08:00:01 INFO {start}precision bf16 (cuda)\n"
        "08:00:31 INFO epoch 3: loss=1 lr=0.01\n"
    )
    sessions = read_run(tmp_path).log_sessions
    assert [s["times"][-1] - s["times"][0] for s in sessions] == [20, 31]
    assert [s["start"]["precision"] for s in sessions] == ["fp32 (CPU AVX2 kernels)", "bf16 (cuda)"]
    assert [sorted(s["epochs"]) for s in sessions] == [[1, 2], [3]]


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", f"--user-data-dir={profile}"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=90)


# run after the page has loaded: how many images decoded to a picture, as an element the dumped DOM shows
_IMAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  var p = document.createElement("p");
  p.id = "image-check";
  p.textContent = "images loaded " + ok + "/" + imgs.length;
  document.body.appendChild(p);
});
</script>"""


def test_report_renders_in_a_headless_browser(report, tmp_path):
    """Chromium draws the page (a 1200x3000 screenshot that is not blank) and its DOM holds every section heading;
    in a copy with a small load-time script, every embedded image has decoded (naturalWidth > 0)."""
    from PIL import Image

    browser = _browser()
    if browser is None:
        pytest.skip("no chromium / chromium-browser / google-chrome binary on PATH")
    shot = tmp_path / "report.png"
    r = _headless(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri())
    assert shot.is_file(), r.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (1200, 3000)
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    dark = pixels < 128  # text, table rules, plot lines
    assert dark.mean() > 0.005 and pixels.std() > 10
    assert dark[:300].any() and dark[1000:2000].any() and dark[2000:].any()  # drawn all the way down

    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text().replace("</body>", _IMAGE_CHECK + "\n</body>"))
    r = _headless(browser, tmp_path / "profile", "--dump-dom", checked.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = Page(r.stdout)
    assert dom.h2 == [name for _, name in SECTIONS]
    assert dom.sections == [sid for sid, _ in SECTIONS]
    assert 'id="image-check">images loaded 3/3<' in r.stdout


@pytest.mark.slow  # about 30 s: a real SynthActions set, `vidlab train` and `vidlab test --out`
def test_report_of_a_real_training_run(synth_tiny, tmp_path):
    recipe, work = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml"), tmp_path / "run"
    r = run_cli("train", str(recipe), f"work_dir={work}", "train.max_iters_per_epoch=2")
    assert r.returncode == 0, r.stderr
    out = work / "test_results.json"
    r = run_cli("test", "--checkpoint", str(work / "best.pth"), "--root", str(synth_tiny), "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = run_cli("report", str(work))
    assert r.returncode == 0, r.stderr
    page = Page((work / "report.html").read_text())
    assert page.sections == [sid for sid, _ in SECTIONS] and len(page.imgs) == 3
    assert [row[0] for row in page.rows["curves"][1:]] == ["1", "2"]
    names = (synth_tiny / "label_map.txt").read_text().split()
    assert [row[1] for row in page.rows["per-class-accuracy"][1:]] == names  # the checkpoint's class names
    env = {row[0]: row[1] for row in page.rows["environment"][1:]}
    assert env["vidlab version"] == vidlab.__version__ and env["processes"] == "1"
    assert 'class="missing"' not in (work / "report.html").read_text()
