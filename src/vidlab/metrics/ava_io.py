"""AVA's file formats: the label map (``.pbtxt``), the box CSV files (ground truth, predictions, excluded timestamps)
and writing predictions in the same layout. Parsed with numpy (no Python loop per row): a 10M-row prediction file
reads in about ten seconds on two cores. :mod:`vidlab.metrics.ava` evaluates what these read.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vidlab.errors import InputError

_US = 1_000_000  # timestamps are kept as exact integers in millionths of a second (or of a frame)
_P10 = 10.0 ** np.arange(23)  # exact powers of ten: mantissa / 10**k is then correctly rounded, like float()


# ----------------------------------------------------------------------------------------------- label map
def parse_labelmap(text: str, source: str = "<labelmap>") -> list[tuple[int, str]]:
    """Parse a protobuf-text label map (``item { name: "x" id: 3 }`` or ``label { name: "x" label_id: 3 }``).

    Fields may come in any order, on one or several lines, with ``#`` comments; other fields (``display_name``,
    ``label_type``, nested messages) are ignored. Returns ``[(id, name), ...]`` in file order.
    """
    toks, pos, items = _pbtxt_tokens(text, source), 0, []
    while pos < len(toks):
        kind, field, line = toks[pos]
        if kind != "word":
            raise InputError(f"{source}:{line}: expected a field name, got {field!r}")
        pos += 1
        if pos < len(toks) and toks[pos][0] == ":":
            pos += 1
        if pos < len(toks) and toks[pos][0] in "{<":
            fields, pos = _pbtxt_message(toks, pos + 1, source, toks[pos][0])
            if field in ("item", "label"):
                items.append(_labelmap_item(fields, source, line))
        else:
            pos = _pbtxt_value(toks, pos, source)[1]
    seen = set()
    for cid, _ in items:
        if cid in seen:
            raise InputError(f"{source}: id {cid} appears twice")
        seen.add(cid)
    if not items:
        raise InputError(f"{source}: no `item {{ name: ... id: ... }}` entries")
    return items


def read_labelmap(path) -> list[tuple[int, str]]:
    """Read a ``.pbtxt`` label map file; see :func:`parse_labelmap`."""
    with open(path, encoding="utf-8") as f:
        return parse_labelmap(f.read(), str(path))


def _labelmap_item(fields: dict, source: str, line: int) -> tuple[int, str]:
    key = "id" if "id" in fields else "label_id"
    if key not in fields or ("name" not in fields and "display_name" not in fields):
        raise InputError(f"{source}:{line}: an item needs a name and an id (or label_id)")
    (kind, value, vline) = fields[key]
    if kind != "word" or not value.lstrip("-+").isdigit():
        raise InputError(f"{source}:{vline}: {key} must be an integer, got {value!r}")
    return int(value), fields.get("name", fields.get("display_name"))[1]


def _pbtxt_tokens(text: str, source: str) -> list[tuple[str, str, int]]:
    """(kind, value, line) tokens: kind is "word", "str" or the punctuation character itself."""
    toks, i, line, n = [], 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v,;":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{}<>:":
            toks.append((c, c, line))
            i += 1
        elif c in "\"'":
            j, out = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\n":
                    break
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                    out.append({"n": "\n", "t": "\t", "r": "\r"}.get(text[j], text[j]))
                else:
                    out.append(text[j])
                j += 1
            if j >= n or text[j] != c:
                raise InputError(f"{source}:{line}: unterminated string")
            if toks and toks[-1][0] == "str":  # adjacent strings concatenate, as in protobuf text
                toks[-1] = ("str", toks[-1][1] + "".join(out), toks[-1][2])
            else:
                toks.append(("str", "".join(out), line))
            i = j + 1
        elif c.isalnum() or c in "_-+.":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_-+."):
                j += 1
            toks.append(("word", text[i:j], line))
            i = j
        else:
            raise InputError(f"{source}:{line}: unexpected character {c!r}")
    return toks


def _pbtxt_value(toks, pos: int, source: str):
    if pos >= len(toks) or toks[pos][0] not in ("word", "str"):
        line = toks[min(pos, len(toks) - 1)][2]
        raise InputError(f"{source}:{line}: expected a value after the field name")
    return toks[pos], pos + 1


def _pbtxt_message(toks, pos: int, source: str, opening: str):
    """Scalar fields of a message body up to its closing brace (first occurrence wins; nested bodies skipped)."""
    closing, fields = "}" if opening == "{" else ">", {}
    while True:
        if pos >= len(toks):
            raise InputError(f"{source}:{toks[-1][2]}: missing {closing!r}")
        kind, field, line = toks[pos]
        if kind == closing:
            return fields, pos + 1
        if kind != "word":
            raise InputError(f"{source}:{line}: expected a field name or {closing!r}, got {field!r}")
        pos += 1
        if pos < len(toks) and toks[pos][0] == ":":
            pos += 1
        if pos < len(toks) and toks[pos][0] in "{<":
            pos = _pbtxt_message(toks, pos + 1, source, toks[pos][0])[1]
        else:
            value, pos = _pbtxt_value(toks, pos, source)
            fields.setdefault(field, value)


# ----------------------------------------------------------------------------------------------- CSV files
class AvaCsv(NamedTuple):
    """The box rows of an AVA-format CSV, as columns.

    ``stamp`` is the timestamp column (seconds, or frame indices for MicroG-4M files) in exact millionths;
    ``score`` is column 8 (the score of a prediction; the person id of a ground-truth row; nan if absent).
    ``key_video`` / ``key_stamp`` list every keyframe the file names, also through rows outside the
    whitelist and two-column ``video,timestamp`` rows (the ActivityNet script's mark of an empty keyframe).
    """

    path: str
    videos: list[str]
    video: np.ndarray  # (N,) int64 index into videos
    stamp: np.ndarray  # (N,) int64
    boxes: np.ndarray  # (N, 4) float64 x1, y1, x2, y2 as written
    label: np.ndarray  # (N,) int64 action id
    score: np.ndarray  # (N,) float64
    line: np.ndarray  # (N,) int64 1-based line number
    key_video: np.ndarray
    key_stamp: np.ndarray


def read_ava_csv(path, whitelist=None, keyframe_unit: str = "second") -> AvaCsv:
    """Read ``video,timestamp,x1,y1,x2,y2,action_id[,score or person_id]`` rows (two-column rows name a keyframe).

    Rows whose action id is not in ``whitelist`` (if given) are dropped. ``keyframe_unit="frame"`` (MicroG-4M's
    files, where column 2 is a frame index) requires integer timestamps; the keyframe key is the same
    ``video,%04d`` either way. A malformed row raises ``ValueError`` naming the file and line.
    """
    return _read_table(path, (2, 7, 8), whitelist, keyframe_unit)


def read_exclusions(path, keyframe_unit: str = "second") -> AvaCsv:
    """Read an excluded-timestamps CSV (``video_id,timestamp`` rows): the keyframes are ``key_video/key_stamp``."""
    return _read_table(path, (2,), None, keyframe_unit)


def _read_table(path, allowed: tuple, whitelist, keyframe_unit: str) -> AvaCsv:
    if keyframe_unit not in ("second", "frame"):
        raise InputError(f"keyframe_unit must be 'second' or 'frame', got {keyframe_unit!r}")
    path = str(path)
    with open(path, "rb") as f:
        raw = f.read()
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    for junk in (b"\r", b'"'):  # carriage returns of CRLF files; quotes around fields (AVA ids never hold commas)
        raw = raw.replace(junk, b"") if junk in raw else raw
    raw += b"" if raw.endswith(b"\n") or not raw else b"\n"
    data = np.frombuffer(raw + bytes(64), np.uint8)  # gathers may read past a field's end
    nl = np.concatenate(
        [np.flatnonzero(data[a : a + (1 << 24)] == 10) + a for a in range(0, len(raw), 1 << 24)] or [[]]
    )
    starts = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)
    lines = np.flatnonzero(nl > starts)  # blank lines are skipped
    starts, ends, lines = starts[lines], nl[lines].astype(np.int64), lines + 1
    chunks = [_parse_lines(data, starts[a : a + (1 << 17)], ends[a : a + (1 << 17)], lines[a : a + (1 << 17)],
                           allowed, path) for a in range(0, len(starts), 1 << 17)]  # fmt: skip
    cat = {k: np.concatenate([c[k] for c in chunks]) if chunks else np.zeros(0) for k in ("vid", "stamp", "rows")}
    vid = cat["vid"].astype("S1") if len(cat["vid"]) == 0 else cat["vid"]
    change = np.concatenate([[True], vid[1:] != vid[:-1]])[: len(vid)]  # a file lists a video's rows together
    names, inv = np.unique(vid[change], return_inverse=True)
    video, stamp = inv.ravel()[np.cumsum(change) - 1].astype(np.int64), cat["stamp"].astype(np.int64)
    if keyframe_unit == "frame" and (stamp % _US).any():
        i = int(np.argmax(stamp % _US != 0))
        raise InputError(f"{path}:{lines[i]}: frame index {stamp[i] / _US} is not an integer")
    key_video, key_stamp = _unique_pairs(video, stamp)
    rows = cat["rows"].astype(bool)
    parts = {k: np.concatenate([c[k] for c in chunks]) if chunks else np.zeros((0, 4) if k == "boxes" else 0)
             for k in ("boxes", "label", "score")}  # fmt: skip
    label = parts["label"].astype(np.int64)
    sel = np.isin(label, np.fromiter(whitelist, np.int64)) if whitelist is not None else slice(None)
    return AvaCsv(path, [b.decode("utf-8") for b in names], video[rows][sel], stamp[rows][sel], parts["boxes"][sel],
                  label[sel], parts["score"][sel], lines[rows][sel], key_video, key_stamp)  # fmt: skip


def _parse_lines(data, starts, ends, lines, allowed, path) -> dict:
    """Columns of one block of lines (blocks keep the temporaries in cache)."""
    commas = np.flatnonzero(data[starts[0] : ends[-1]] == 44) + starts[0]
    c0 = np.searchsorted(commas, starts)
    nfields = np.searchsorted(commas, ends) - c0 + 1
    bad = ~np.isin(nfields, allowed)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{path}:{lines[i]}: expected {' or '.join(map(str, allowed))} comma-separated fields, "
                         f"got {nfields[i]}")  # fmt: skip
    last, uniform = len(commas) - 1, bool((nfields == nfields[0]).all())

    def field(j, rows):
        s = starts[rows] if j == 0 else commas[c0[rows] + j - 1] + 1
        if uniform:  # the usual file: every row has the same number of fields
            return s, (commas[c0[rows] + j] if j < nfields[0] - 1 else ends[rows])
        return s, np.where(nfields[rows] - 1 > j, commas[np.minimum(c0[rows] + j, last)], ends[rows])

    every = np.arange(len(starts))
    s, e = field(0, every)
    width = max(int((e - s).max()), 1)
    idx = s[:, None] + np.arange(width)
    vid = np.where(idx < e[:, None], data[idx], 0).astype(np.uint8).view(f"S{width}").ravel()
    ts, mant, nfrac, plain = _numbers(data, *field(1, every), path, lines, "timestamp")
    out = {"vid": vid, "stamp": _stamps(ts, mant, nfrac, plain, path, lines), "rows": nfields >= 7}
    rows = np.flatnonzero(nfields >= 7)
    cols = [_numbers(data, *field(j, rows), path, lines[rows], name)[0]
            for j, name in zip(range(2, 7), ("x1", "y1", "x2", "y2", "action id"))]  # fmt: skip
    label = cols.pop() if cols else np.zeros(0)
    if (label != np.floor(label)).any():
        raise InputError(
            f"{path}:{lines[rows[int(np.argmax(label != np.floor(label)))]]}: action id must be an integer"
        )
    score = np.full(len(rows), np.nan)
    with8 = np.flatnonzero(nfields[rows] == 8)
    if len(with8):
        score[with8] = _numbers(data, *field(7, rows[with8]), path, lines[rows[with8]], "score")[0]
    boxes = np.stack(cols, 1) if cols else np.zeros((0, 4))
    finite = np.isfinite(boxes).all(1) & (np.isfinite(score) | (nfields[rows] == 7))
    if not finite.all():
        raise InputError(f"{path}:{lines[rows[int(np.argmax(~finite))]]}: box coordinates and scores must be finite")
    out.update(boxes=boxes, label=label, score=score)
    return out


def _numbers(data, s, e, path, lines, what):
    """Parse decimal fields [s, e): (value, signed mantissa, digits after the point, plain) per field.

    Plain fields (``[+-]digits[.digits]``, up to 18 digits) are converted as mantissa / 10**k, which IEEE division
    rounds correctly, i.e. exactly as ``float()``; anything else (exponents, spaces, nan) goes through ``float()``.
    """
    n = len(s)
    w = (e - s).astype(np.int64)
    width = min(int(w.max()) if n else 0, 20)
    if n and 0 < width <= 16 and w.min() == width:  # fixed format ("%.3f" of [0, 1), "%04d"): one pass per digit
        dot = int(np.argmax(data[s[0] : s[0] + width] == 46)) if 46 in data[s[0] : s[0] + width] else width
        if dot == width or (data[s + dot] == 46).all():
            mant, ok = np.zeros(n, np.int64), np.ones(n, bool)
            for k in range(width):
                if k != dot:
                    d = data[s + k] - np.uint8(48)
                    ok &= d < 10
                    mant = mant * 10 + d
            if ok.all():
                nfrac = max(width - dot - 1, 0)
                return mant / _P10[nfrac], mant, np.full(n, nfrac), ok
    mant, nfrac, ndig = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    dots, neg, bad = np.zeros(n, bool), np.zeros(n, bool), (w == 0) | (w > 20)
    for k in range(width):
        c = data[s + k]
        inside = k < w
        d = c - np.uint8(48)
        dig = (d < 10) & inside
        mant = np.where(dig, mant * 10 + d, mant)
        nfrac += dig & dots
        ndig += dig
        dot = (c == 46) & inside
        bad |= dot & dots
        dots |= dot
        other = inside & ~dig & ~dot
        if k == 0:
            neg = c == 45
            other &= ~(neg | (c == 43))
        bad |= other
    bad |= (ndig == 0) | (ndig > 18) | (mant >= 2**53)
    value = mant / _P10[np.minimum(nfrac, 22)]
    value[neg] = -value[neg]
    for i in np.flatnonzero(bad):
        text = bytes(data[s[i] : e[i]]).decode("utf-8", "replace")
        try:
            value[i] = float(text)
        except ValueError:
            raise InputError(f"{path}:{lines[i]}: cannot parse {what} {text!r}") from None
    return value, np.where(neg, -mant, mant), nfrac, ~bad


def _stamps(value, mant, nfrac, plain, path, lines):
    """Timestamps in exact millionths: the digits "%.6f" prints (the ActivityNet key), as an integer."""
    stamp = np.zeros(len(value), np.int64)
    plain = plain & (nfrac <= 6) & (np.abs(value) < 1e9)
    stamp[plain] = mant[plain] * (10 ** (6 - nfrac[plain]))
    for i in np.flatnonzero(~plain):
        if not np.isfinite(value[i]):
            raise InputError(f"{path}:{lines[i]}: timestamp {value[i]} is not finite")
        stamp[i] = int(f"{value[i]:.6f}".replace(".", ""))
    return stamp


def _unique_pairs(a, b):
    if len(a) == 0:
        return a[:0], b[:0]
    heads = np.flatnonzero(np.concatenate([[True], (a[1:] != a[:-1]) | (b[1:] != b[:-1])]))  # rows come in runs
    lo, span = int(b.min()), int(b.max()) - int(b.min()) + 1
    if span * (int(a.max()) + 1) >= 2**62:
        pairs = np.unique(np.stack([a[heads], b[heads]], 1), axis=0)
        return pairs[:, 0], pairs[:, 1]
    packed = np.unique(a[heads] * span + (b[heads] - lo))
    return packed // span, packed % span + lo


def write_ava_csv(dest, rows) -> None:
    """Write predictions ``(video, timestamp, x1, y1, x2, y2, action_id, score)`` as AVA CSV rows.

    Integer timestamps are written ``%04d`` (AVA's keys), floats at full precision (ties in rounded scores change
    AP). ``dest`` is a path or an open binary file; for a write that a crash cannot truncate, pass the file of
    ``vidlab.engine.checkpoint.atomic_write(path, lambda f: write_ava_csv(f, rows))``.
    """
    out = []
    for video, ts, x1, y1, x2, y2, action, score in rows:
        ts = f"{int(ts):04d}" if float(ts).is_integer() else repr(float(ts))
        coords = ",".join(repr(float(v)) for v in (x1, y1, x2, y2))
        out.append(f"{video},{ts},{coords},{int(action)},{float(score)!r}\n")
    payload = "".join(out).encode("utf-8")
    if hasattr(dest, "write"):
        dest.write(payload)
    else:
        with open(dest, "wb") as f:
            f.write(payload)
