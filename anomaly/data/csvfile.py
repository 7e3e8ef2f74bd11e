"""A CSV log file -> its cleaned header and raw frames; every way reading can fail is a LogError.

The header is read here, once, rather than left to pandas: pandas renames a repeated name
('time.1'), which would then pass for a channel, and keeps spaces around names, which would make
`validate` and `score` see different channels. Names are stripped, repeats marked (the reader
refuses a repeated column it needs; ALFA has a file with a repeated column it never reads), and an
empty name becomes pandas' 'Unnamed: N' (a trailing delimiter), which must then stay empty.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from anomaly.data.schema import LogError

SNIFF_SEPS = (",", ";", "\t")
# Bytes that are not UTF-8 (a latin-1 comment, say) become U+FFFD rather than failing the file:
# they can only sit in text cells, which are left out or reported, or in a header name.
READ_OPTIONS = {"compression": "infer", "encoding": "utf-8", "encoding_errors": "replace"}
TOO_MANY_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Turn what opening, decompressing and parsing can raise into a LogError naming `path`."""
    p = str(path)
    try:
        yield
    except pd.errors.EmptyDataError:
        raise LogError(p, "file is empty") from None
    except pd.errors.ParserError as exc:
        text = str(exc).strip().splitlines()[-1]
        if m := TOO_MANY_FIELDS.search(text):
            why = f"{m[3]} fields where the header has {m[1]} (a stray delimiter?)"
            raise LogError(p, why, None, int(m[2])) from None
        raise LogError(p, f"malformed CSV: {text}") from None
    except (OSError, EOFError, zlib.error, UnicodeError) as exc:
        raise LogError(p, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def header_line(path: Path) -> str:
    """The first line, outside quotes (a quoted name may hold a delimiter: 'speed, m/s')."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.readline()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LogError(str(path), "UTF-16 text (an Excel export?); save it as UTF-8 CSV", None, 1)
    if not raw.strip():  # every row number would be one off, and a watch would read the header
        raise LogError(
            str(path), "the first line is blank; the header must be the first line", None, 1
        )
    return re.sub(r'"[^"]*"', "", raw.decode("utf-8", errors="replace"))


def sniff_sep(header: str) -> str:
    """The most frequent of `SNIFF_SEPS` in the header line; ',' when none is there."""
    counts = {sep: header.count(sep) for sep in SNIFF_SEPS}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


class CsvFile:
    """One log file's delimiter and header, and its rows as pandas frames (columns renamed to
    the cleaned header).

    Attributes
    ----------
    sep : the delimiter, given or sniffed.
    names : column names, stripped; an empty name is 'Unnamed: N' (N its position), a repeat
        gets primes (a', a'') so that each column keeps its own name.
    unnamed : the names that were empty in the file.
    repeated : names the header holds more than once: an error if the log needs that column.
    copies : the primed names of the repeats, never used.
    """

    def __init__(self, path: str | Path, sep: str | None = None):
        self.path = Path(path)
        p = str(self.path)
        with read_errors(self.path):
            if not self.path.exists():
                raise LogError(p, "file not found")
            if self.path.is_dir():
                raise LogError(p, "not a file: a folder with no .csv or .csv.gz log in it")
            if not self.path.is_file():
                raise LogError(p, "not a file")
            if self.path.stat().st_size == 0:
                raise LogError(p, "file is empty")
            header = header_line(self.path)
            self.sep = sep or sniff_sep(header)
            seen = sniff_sep(header)
            if (
                sep and sep not in header and seen in header
            ):  # a model's or a flag's, not this log's
                why = f"no {sep!r} in the header; it looks {seen!r}-separated (--sep {seen!r})"
                raise LogError(p, why, None, 1)
            # the first data row too: with more fields than the header, pandas would silently
            # take the first column as an index and shift every name by one
            kw = dict(header=None, nrows=2, dtype=str, keep_default_na=False, **READ_OPTIONS)
            head = pd.read_csv(self.path, sep=self.sep, **kw)
        raw = [str(v).strip() for v in head.iloc[0]]
        self.names: list[str] = []
        self.unnamed: list[str] = []
        self.repeated: set[str] = set()
        self.copies: list[str] = []
        for i, name in enumerate(raw):
            if not name:
                name = f"Unnamed: {i}"
                self.unnamed.append(name)
            if name in self.names:
                self.repeated.add(name)
                while name in self.names:
                    name += "'"
                self.copies.append(name)
            self.names.append(name)

    def _read(self, **kw) -> pd.DataFrame | Iterator[pd.DataFrame]:
        kw = dict(sep=self.sep, header=0, index_col=False, low_memory=False, **READ_OPTIONS, **kw)
        return pd.read_csv(self.path, **kw)

    def head(self, n_rows: int) -> pd.DataFrame:
        """The first `n_rows` data rows."""
        with read_errors(self.path):
            frame = self._read(nrows=n_rows)
        frame.columns = self.names
        return frame

    def parse(self, lines: str, first_row: int = 2) -> pd.DataFrame:
        """Data lines (no header) read as this file's rows: what `anomaly watch` reads as a file
        grows. `first_row` is the file row of the first line, so that an error names the row
        as `anomaly score` names it, and a line with more fields than the header is refused as
        it is there (given the header's names, pandas would drop the extra value)."""
        # room for the widest line (a quoted delimiter only overcounts): no line is cut to
        # the first one's width, and a shorter line gets empty cells
        width = max(len(self.names), 1 + max(line.count(self.sep) for line in lines.split("\n")))
        with read_errors(self.path):
            kw = dict(sep=self.sep, header=None, names=range(width), index_col=False)
            frame = pd.read_csv(io.StringIO(lines), low_memory=False, **kw)
        n = len(self.names)
        extra = frame.iloc[:, n:].notna().any(axis=1).to_numpy()
        if extra.any():
            i = int(extra.argmax())
            fields = int(frame.iloc[i].notna().to_numpy().nonzero()[0].max()) + 1
            why = f"{fields} fields where the header has {n} (a stray delimiter?)"
            # pandas skips blank lines: count them back in, as `anomaly score`'s reader does
            filled = [k for k, line in enumerate(lines.split("\n")) if line.strip()]
            raise LogError(str(self.path), why, None, first_row + filled[i])
        frame = frame.iloc[:, :n].copy()
        frame.columns = self.names
        return frame

    def file_rows(self, data_rows: list[int]) -> dict[int, int]:
        """Data rows as pandas counts them (header row 1, blank lines skipped) -> the file's
        rows (every line counted), read up to the last one asked for: only when an error is
        reported, so a log is never read twice on the way."""
        want, out = sorted(set(data_rows)), {}
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        with opener(self.path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            fh.readline()  # the header, row 1 either way
            data, line = 1, 1
            for text in fh:
                if not want:
                    break
                line += 1
                if text.strip():
                    data += 1
                    while want and want[0] == data:
                        out[want.pop(0)] = line
        out.update({r: r for r in want})  # past the end (the file still growing): as counted
        return out

    def frames(self, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The data rows, whole (one frame) or `chunk_rows` at a time."""
        with read_errors(self.path):
            if chunk_rows is None:
                frame = self._read()
                frame.columns = self.names
                yield frame
                return
            with self._read(chunksize=chunk_rows) as reader:
                for frame in reader:
                    frame.columns = self.names
                    yield frame
