"""What renders as nothing, from the standard's own tables, for the tests of blank texts
and padded user ids: Unicode 16.0's Default_Ignorable_Code_Point (DerivedCoreProperties.txt)
and White_Space (PropList.txt), written out here so that the tests do not ask polars'
regular expressions, which the code under test uses, what they are."""

from __future__ import annotations

_DEFAULT_IGNORABLE = """
00AD 034F 061C 115F..1160 17B4..17B5 180B..180D 180E 180F 200B..200F 202A..202E 2060..2064 2065 2066..206F 3164
FE00..FE0F FEFF FFA0 FFF0..FFF8 1BCA0..1BCA3 1D173..1D17A E0000 E0001 E0002..E001F E0020..E007F E0080..E00FF
E0100..E01EF E01F0..E0FFF
"""


def _code_points(table: str) -> list[str]:
    ranges = [(item.partition("..")[0], item.partition("..")[2] or item.partition("..")[0]) for item in table.split()]
    return [chr(c) for first, last in ranges for c in range(int(first, 16), int(last, 16) + 1)]


IGNORABLES = _code_points(_DEFAULT_IGNORABLE)  # 4,174 code points
# White_Space but its control characters (tab, LF, VT, FF, CR, NEL), which text formats split lines and fields at
# or reject as control_chars
SPACES = _code_points("0020 00A0 1680 2000..200A 2028 2029 202F 205F 3000")
# Variation_Selector (PropList.txt) and the tag characters of emoji tag sequences (UTS #51): they choose the form of
# the character before them, and stay after a visible one
SELECTORS = _code_points("180B..180D 180F FE00..FE0F E0100..E01EF E0020..E007F")
