"""The two caption tools that run on Java: METEOR 1.5 and the PTB tokenizer of Stanford CoreNLP 3.4.1.

Both jars come from the ``pycocoevalcap`` wheel (``pip install pycocoevalcap==1.2``; nothing is downloaded):
``meteor/meteor-1.5.jar`` (with its ``data/paraphrase-en.gz``) and ``tokenizer/stanford-corenlp-3.4.1.jar``. The
environment variable ``VIDLAB_PYCOCOEVALCAP`` may name another folder with that layout (the ``pycocoevalcap``
package folder of another environment). Java is the ``java`` found on PATH (or ``VIDLAB_JAVA``).

METEOR runs as one long-lived process that speaks the jar's ``-stdio`` protocol, as pycocoevalcap drives it: one
``SCORE ||| ref 1 ||| ... ||| ref n ||| hypothesis`` line per item answers with that item's statistics, then one
``EVAL ||| stats 1 ||| ... ||| stats N`` line answers with N per-item scores and the corpus score. Every read has a
timeout, and the process ends with :meth:`MeteorScorer.close`, the ``with`` block, or at interpreter exit.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

from vidlab.errors import InputError, VidlabError

METEOR_JAR = "meteor/meteor-1.5.jar"
PTB_JAR = "tokenizer/stanford-corenlp-3.4.1.jar"
# the tokens pycocoevalcap's tokenizer drops after PTB tokenization
PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# what Java's PTB lexer counts as a line break; a caption's own breaks become spaces so that lines stay aligned
_LINE_BREAKS = re.compile("\r\n|[\n\r\u2028\u2029\x0b\x0c\x85]")


class JavaToolError(VidlabError, RuntimeError):
    """Java or a jar is missing, or the Java process failed / did not answer in time."""


def find_java() -> str:
    """Path of the ``java`` executable (``VIDLAB_JAVA``, else PATH)."""
    java = os.environ.get("VIDLAB_JAVA") or shutil.which("java")
    if not java or not (shutil.which(java) or Path(java).is_file()):
        raise JavaToolError(
            "METEOR and the PTB tokenizer (tokenize='coco') need Java: install a Java runtime (e.g. `apt-get install "
            "default-jre-headless`) so that `java` is on PATH, or set VIDLAB_JAVA; BLEU, CIDEr-D and ROUGE-L with "
            "tokenize='none' need neither"
        )
    return java


def find_pycocoevalcap_file(relative: str) -> Path:
    """A file shipped in the pycocoevalcap wheel, e.g. ``meteor/meteor-1.5.jar``, located without importing it."""
    roots = []
    if os.environ.get("VIDLAB_PYCOCOEVALCAP"):
        roots.append(Path(os.environ["VIDLAB_PYCOCOEVALCAP"]))
    else:
        spec = importlib.util.find_spec("pycocoevalcap")
        if spec is not None:
            roots += [Path(p) for p in (spec.submodule_search_locations or [])]
        if not roots:
            raise JavaToolError(
                f"{relative} ships with the pycocoevalcap package, which is not installed: `pip install "
                "pycocoevalcap==1.2` (or `pip install vidlab[caption]`), or set VIDLAB_PYCOCOEVALCAP to a folder "
                "with its layout"
            )
    for root in roots:
        if (root / relative).is_file():
            return root / relative
    raise JavaToolError(f"{relative} not found under {', '.join(map(str, roots))} (an incomplete pycocoevalcap?)")


# ------------------------------------------------------------------------------------------------------- METEOR
def _meteor_line(references: Sequence[str], hypothesis: str) -> str:
    """One ``SCORE`` request. ``|||`` separates fields, so it is removed from the texts (pycocoevalcap removes it from
    the hypothesis only); every run of whitespace, line breaks included, becomes one space (as MicroG-4M's copy of
    the wrapper does), which keeps a request on one line."""
    fields = ["SCORE", *(r.replace("|||", "") for r in references), hypothesis.replace("|||", "")]
    return re.sub(r"\s+", " ", " ||| ".join(fields))


def _read_lines(stream, lines: queue.Queue) -> None:
    """Reader thread: every line of ``stream`` into ``lines``, then ``None`` at its end."""
    for line in iter(stream.readline, b""):
        lines.put(line)
    lines.put(None)


def _keep_tail(stream, tail: collections.deque) -> None:
    """Reader thread: keeps the last lines of ``stream`` (so that a chatty stderr never fills its pipe)."""
    for line in iter(stream.readline, b""):
        tail.append(line)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.stdin.close()
        except OSError:
            pass
        proc.kill()
    proc.wait()


class MeteorScorer:
    """METEOR 1.5 (``-l en -norm``, as pycocoevalcap) through one Java process, started on first use.

    Args:
        jar: path of ``meteor-1.5.jar`` (default: the one in the pycocoevalcap wheel).
        java: the Java executable (default: :func:`find_java`).
        timeout: seconds to wait for any one answer of the process (its first answer includes loading the
            paraphrase table, several seconds).
        memory: the JVM's maximum heap, pycocoevalcap's ``2G``.
    """

    def __init__(self, jar: str | os.PathLike | None = None, java: str | None = None, timeout: float = 300.0,
                 memory: str = "2G"):  # fmt: skip
        self.jar = Path(jar) if jar else None
        self.java = java
        self.timeout = timeout
        self.memory = memory
        self._proc: subprocess.Popen | None = None
        self._out: queue.Queue | None = None
        self._err: collections.deque = collections.deque(maxlen=40)
        self._lock = threading.Lock()

    def _start(self) -> None:
        java = self.java or find_java()
        jar = self.jar or find_pycocoevalcap_file(METEOR_JAR)
        cmd = [java, "-jar", f"-Xmx{self.memory}", str(jar), "-", "-", "-stdio", "-l", "en", "-norm"]
        try:  # from the jar's folder, where it finds data/paraphrase-en.gz
            proc = subprocess.Popen(cmd, cwd=Path(jar).parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)  # fmt: skip
        except OSError as e:
            raise JavaToolError(f"could not start METEOR ({' '.join(cmd)}): {e}") from e
        self._proc, self._out, self._err = proc, queue.Queue(), collections.deque(maxlen=40)
        threading.Thread(target=_read_lines, args=(proc.stdout, self._out), daemon=True).start()
        self._err_thread = threading.Thread(target=_keep_tail, args=(proc.stderr, self._err), daemon=True)
        self._err_thread.start()
        self._finalizer = weakref.finalize(self, _stop, proc)  # also runs at interpreter exit

    def _exchange(self, lines: list[str], answers: int) -> list[str]:
        """Send ``lines`` and read ``answers`` lines back; the writer runs in a thread, so a stuck process cannot
        block us past the timeout."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        proc = self._proc
        payload = "".join(line + "\n" for line in lines).encode()

        def write():
            try:
                proc.stdin.write(payload)
                proc.stdin.flush()
            except (OSError, ValueError):
                pass  # the process died; the reads below report it

        threading.Thread(target=write, daemon=True).start()
        out = []
        for _ in range(answers):
            try:
                line = self._out.get(timeout=self.timeout)
            except queue.Empty:
                self.close()
                raise JavaToolError(f"METEOR gave no answer within {self.timeout:g} s; {self._stderr()}") from None
            if line is None:
                self.close()
                raise JavaToolError(f"the METEOR process ended unexpectedly; {self._stderr()}")
            out.append(line.decode(errors="replace").strip())
        return out

    def _stderr(self) -> str:
        """The process's last lines on stderr (call after :meth:`close`: its reader then reaches the end)."""
        self._err_thread.join(timeout=2.0)
        text = b"".join(self._err).decode(errors="replace").strip()
        return f"its last output: {text[-1500:]}" if text else "it printed nothing"

    def score(self, references: Sequence[Sequence[str]], hypotheses: Sequence[str]) -> tuple[float, list[float]]:
        """Corpus METEOR and the per-item scores."""
        if len(references) != len(hypotheses) or not hypotheses:
            raise InputError(f"METEOR needs one hypothesis per reference list, got {len(hypotheses)} and "
                             f"{len(references)}")  # fmt: skip
        with self._lock:
            stats = self._exchange([_meteor_line(r, h) for r, h in zip(references, hypotheses)], len(hypotheses))
            answers = self._exchange(["EVAL ||| " + " ||| ".join(stats)], len(hypotheses) + 1)
        try:
            values = [float(a) for a in answers]
        except ValueError:
            self.close()
            raise JavaToolError(f"METEOR answered {answers[:3]!r}...; {self._stderr()}") from None
        return values[-1], values[:-1]

    def close(self) -> None:
        """End the Java process (idempotent)."""
        if self._proc is not None:
            self._finalizer()
            self._proc = None

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_shared: MeteorScorer | None = None


def shared_meteor() -> MeteorScorer:
    """One METEOR process for the whole interpreter (the JVM and its paraphrase table load once), closed at exit."""
    global _shared
    if _shared is None:
        _shared = MeteorScorer()
        atexit.register(_shared.close)
    return _shared


# -------------------------------------------------------------------------------------------------- PTB tokenizer
def ptb_tokenize(sentences: Sequence[str], jar: str | os.PathLike | None = None, timeout: float = 600.0) -> list[str]:
    """pycocoevalcap's ``PTBTokenizer``: Stanford's PTB tokenizer, lower-cased, with punctuation tokens removed;
    tokens are joined by single spaces. One Java run for all ``sentences``."""
    if not sentences:
        return []
    java = find_java()
    jar = Path(jar) if jar else find_pycocoevalcap_file(PTB_JAR)
    text = "\n".join(_LINE_BREAKS.sub(" ", s) for s in sentences)
    with tempfile.TemporaryDirectory(prefix="vidlab_ptb_") as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_bytes(text.encode())
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase",
               str(path)]  # fmt: skip
        try:
            res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise JavaToolError(f"the PTB tokenizer did not finish within {timeout:g} s") from None
        except OSError as e:
            raise JavaToolError(f"could not run the PTB tokenizer ({' '.join(cmd)}): {e}") from e
    if res.returncode != 0:
        raise JavaToolError(f"the PTB tokenizer failed ({res.returncode}): {res.stderr.decode(errors='replace')}")
    lines = res.stdout.decode(errors="replace").split("\n")
    if len(lines) < len(sentences):
        raise JavaToolError(f"the PTB tokenizer returned {len(lines)} lines for {len(sentences)} sentences")
    return [
        " ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION) for line in lines[: len(sentences)]
    ]
