"""What of a command's output is worth keeping for "What I did".

`docker pull` and `docker compose pull/up` print a line per image layer per state
("Pulling fs layer", "Waiting", "Downloading [==>   ]", "Verifying Checksum",
"Extracting", "Pull complete"...), often hundreds, redrawn with carriage returns and
terminal colours. `meaningful_output()`:

1. Splits the output into lines (carriage returns too) and removes terminal colour codes.
2. Drops the layer progress lines (a 12-digit layer id, then one of the states above),
   blank lines and a line that only repeats the one before it.
3. Keeps the last `KEEP_LINES` of what is left, and says how many lines were left out, so
   the command's last meaningful lines (the image pulled, the container started, the
   error) stay and nobody wonders where the rest went.
"""

from __future__ import annotations

import re

KEEP_LINES = 60

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LAYER_PROGRESS = re.compile(
    r"^\s*(?:[^\w\s]\s*)?"  # a spinner or tick compose prints in front
    r"[0-9a-f]{12}:?\s+"  # the layer id
    r"(?:Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|"
    r"Extracting|Pull complete|Already exists|Retrying in)\b",
    re.IGNORECASE,
)


def is_progress_line(line: str) -> bool:
    return bool(_LAYER_PROGRESS.match(line))


def meaningful_output(text: str, *, keep_lines: int = KEEP_LINES) -> str:
    """The output without download progress, at most `keep_lines` lines (the last ones)."""
    if not text:
        return text
    kept: list[str] = []
    progress = 0
    for raw in re.split(r"\r\n|\r|\n", _ANSI.sub("", text)):
        line = raw.rstrip()
        if not line.strip():
            continue
        if is_progress_line(line):
            progress += 1
            continue
        if kept and kept[-1] == line:
            continue
        kept.append(line)
    earlier = max(len(kept) - keep_lines, 0)
    kept = kept[earlier:]
    notes = []
    if progress:
        notes.append(f"{progress} download progress line{'s' if progress != 1 else ''}")
    if earlier:
        notes.append(f"{earlier} earlier line{'s' if earlier != 1 else ''}")
    if notes:
        kept.insert(0, f"(… {' and '.join(notes)} left out)")
    return "\n".join(kept)
