"""Malformed xyz files of every kind the database builder must report and skip."""

from __future__ import annotations

_GOOD_LINES = ["20", "-1550.123456"] + [
    f"Au {i * 2.8:.4f} {(i % 3) * 0.1:.4f} 0.0" for i in range(20)
]


def _lines(*parts: str) -> bytes:
    return "\n".join(parts).encode()


# Every malformed-file case of the database builder: name -> (bytes, expected reason fragment)
BAD_XYZ_CASES: dict[str, tuple[bytes, str]] = {
    "100.xyz": (b"", "empty file"),
    "101.xyz": (_lines(*_GOOD_LINES[:12]), "truncated: 10 atom lines, line 1 declares 20"),
    "102.xyz": (_lines("19", *_GOOD_LINES[1:]), "wrong atom count on line 1: 19"),
    "103.xyz": (_lines("twenty", *_GOOD_LINES[1:]), "line 1 must be the atom count"),
    "104.xyz": (_lines("20", "", *_GOOD_LINES[2:]), "missing energy on line 2"),
    "105.xyz": (_lines("20", "abc", *_GOOD_LINES[2:]), "energy on line 2 is not a number"),
    "106.xyz": (_lines("20", "E=-1550.1", *_GOOD_LINES[2:]), "not a number: 'E=-1550.1'"),
    "107.xyz": (_lines(*_GOOD_LINES[:5], "Ag 0 0 30", *_GOOD_LINES[6:]), "'Ag' is not Au"),
    "108.xyz": (_lines(*_GOOD_LINES[:5], "Au nan 0 30", *_GOOD_LINES[6:]), "not finite"),
    "109.xyz": (_lines(*_GOOD_LINES[:5], "Au 0 inf 30", *_GOOD_LINES[6:]), "not finite"),
    "110.xyz": (_lines(*_GOOD_LINES).replace(b"Au", b"A\xff", 1), "not UTF-8 text"),
    "111.xyz": (_lines(*_GOOD_LINES[:3], "Au 0.5 0 0", *_GOOD_LINES[4:]), "closer than 1.0"),
    "112.xyz": (_lines(*_GOOD_LINES, "Au 60 0 0"), "21 atom lines, line 1 declares 20"),
    "113.xyz": (_lines(*_GOOD_LINES[:4], "Au 1.0 2.0", *_GOOD_LINES[5:]), "line 5: expected"),
    "114.xyz": (_lines(*_GOOD_LINES[:5], "Au 1000 0 0", *_GOOD_LINES[6:]), "torn off the cluster"),
    "115.xyz": (_lines(*_GOOD_LINES[:5], "Au 1e300 0 0", *_GOOD_LINES[6:]), "coordinates beyond"),
    "notanid.xyz": (_lines(*_GOOD_LINES), "stem 'notanid' is not an integer"),
    "99999999999999999999.xyz": (_lines(*_GOOD_LINES), "outside 0..9223372036854775807"),
}

# Entries named *.xyz that are not regular files: name -> expected reason fragment
SPECIAL_XYZ_CASES: dict[str, str] = {
    "120.xyz": "a directory",
    "121.xyz": "dangling symbolic link",
    "122.xyz": "a FIFO",
}
