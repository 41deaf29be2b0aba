"""Reads of /proc (Linux): files, a process's stat line, its children, the machine's CPU ticks."""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read(path: str) -> str:
    """The file's text, or "" when it is gone (a process that exited) or unreadable."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def stat(pid: int) -> tuple[str, list[str]] | None:
    """(comm, the fields after it: state, ppid, pgrp, session, ...) of /proc/<pid>/stat, or None."""
    text = read(f"/proc/{pid}/stat")
    if not text:
        return None
    return text[text.find("(") + 1 : text.rfind(")")], text[text.rfind(")") + 2 :].split()


def pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def children(pid: int) -> list[int]:
    """Live (not zombie) children of a process, sorted."""
    found = []
    for child in pids():
        parsed = stat(child)
        if parsed and parsed[1] and parsed[1][0] != "Z" and int(parsed[1][1]) == pid:
            found.append(child)
    return sorted(found)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    parts = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:9]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)
