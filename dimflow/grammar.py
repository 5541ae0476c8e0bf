"""Dimension callout grammar: OCR text <-> structured fields.

`parse` accepts a callout as an OCR engine or a drafter may write it (``⌀``/``Ø``/``∅``,
decimal commas, ``×`` or ``X`` for counts, stray spaces, stacked tolerances flattened
to one line) and `format_callout` writes the contract's normalised text back.

Conventions (documented because the contract leaves them open):

* Numbers keep the digits as written: ``16.00`` stays ``16.00`` (trailing zeros carry
  the drawing's precision), so values are `Decimal` inside the grammar.
* Symmetric tolerance: ``45±0.1`` (no space) -> upper 0.1, lower -0.1.
* Deviations: ``45 +0.2/-0.1`` (one space before, upper first) -> 0.2 / -0.1; a zero
  deviation is written unsigned (``+0.05/0``). Parentheses around them are dropped.
* Limit dimensions (two stacked values, ``16.00`` over ``15.50``): normalised text is
  ``16.00/15.50`` (larger first); nominal is the larger limit, upper 0.0 and lower the
  (negative) difference to the smaller limit, so nominal+lower is the lower limit.
* Fits: ``Ø12 H7``, ``Ø12 H7/g6``, optionally followed by deviations. A thread's
  tolerance class is its fit: ``M6x1-6g``.
* Chamfers: ``1x45°`` (length x angle, nominal is the length), ``CH5`` and ``C2``
  (nominal is the leg length). ``Nx A°`` with a space after the ``x`` and an integer
  N >= 2 is read as a count of angles instead (``4x 90°``); ``1 x 45°`` and ``2x45°``
  are chamfers.
* Counts: ``4x Ø6`` (``x``, then one space).
* Reference dimensions: ``(25.5)``; the parentheses stay in the text and
  `Callout.reference` is set.
* Limits written on one line, smaller first as SOLIDWORKS does (``Ø5.8-5.85``): the same limit
  dimension as ``Ø5.85/5.8``. A hyphen followed by a *smaller* number is refused (it would be a
  one-sided deviation written without its space).
* Spherical ``SØ20``, ``SR10``: diameter and radius, the ``S`` kept in the text.
* Angles in degrees and minutes (seconds): ``30°15'`` -> nominal 30.25 (rounded to 1e-6).
* A count written after the value (``Ø6 (4x)``, ``R2 4 PL``, ``4 PLACES``) is the count, written
  first in the normalised text; ``THRU`` and ``TYP`` stay at the end of the text, no field.
* One-sided limits: ``10.00 MAX`` (``max.``, ``MAX.``) -> upper 0.0, lower null (nothing may be
  larger); ``6.00 MIN`` -> lower 0.0, upper null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = ["Callout", "GrammarError", "Kind", "ToleranceStyle", "format_callout", "parse"]


class Kind(StrEnum):
    LINEAR = "linear"
    DIAMETER = "diameter"
    RADIUS = "radius"
    ANGULAR = "angular"
    THREAD = "thread"
    CHAMFER = "chamfer"


class ToleranceStyle(StrEnum):
    NONE = "none"
    SYMMETRIC = "symmetric"
    DEVIATION = "deviation"
    LIMITS = "limits"
    MAX = "max"
    MIN = "min"


class GrammarError(ValueError):
    """The text is not a dimension callout this grammar understands."""


@dataclass(frozen=True)
class Callout:
    """One dimension callout's fields; values are Decimals so digits survive a round trip."""

    kind: Kind
    nominal: Decimal
    upper: Decimal | None = None
    lower: Decimal | None = None
    fit: str | None = None
    count: int = 1
    tolerance: ToleranceStyle = ToleranceStyle.NONE
    pitch: Decimal | None = None  # thread pitch, M6x1
    angle: Decimal | None = None  # chamfer angle, 1x45°
    chamfer_prefix: str | None = None  # "CH" or "C" for CH5 / C2 chamfers
    reference: bool = False
    spherical: bool = False  # SØ / SR
    dms: tuple[int, int, int] | None = None  # an angle written in degrees, minutes (and seconds)
    notes: tuple[str, ...] = ()  # THRU, TYP: kept in the text, no field of their own

    @property
    def unit(self) -> str:
        return "deg" if self.kind is Kind.ANGULAR else "mm"

    def fields(self) -> dict:
        """The contract's dimension fields (floats, as JSON carries them)."""
        return {
            "text": format_callout(self),
            "kind": self.kind.value,
            "nominal": float(self.nominal),
            "unit": self.unit,
            "upper": None if self.upper is None else float(self.upper),
            "lower": None if self.lower is None else float(self.lower),
            "fit": self.fit,
            "count": self.count,
        }


# ---------------------------------------------------------------- canonicalisation

_CHAR_MAP = str.maketrans(
    {
        "⌀": "Ø",
        "∅": "Ø",
        "ø": "Ø",
        "Φ": "Ø",
        "φ": "Ø",
        "ϕ": "Ø",  # diameter look-alikes
        "º": "°",
        "˚": "°",
        "⁰": "°",  # degree look-alikes
        "−": "-",
        "–": "-",
        "—": "-",
        "‐": "-",
        "‑": "-",  # minus look-alikes
        "×": "x",
        "✕": "x",
        "∗": "x",  # multiplication
        "（": "(",
        "）": ")",
        "\t": " ",
        "\n": " ",
        "\r": " ",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
    }
)

_NUM = r"\d+(?:\.\d+)?"
_FIT = r"(?:[A-Z]{1,2}|[a-z]{1,2})\d{1,2}"
_FIT_RE = re.compile(rf"{_FIT}(?:/{_FIT})?")


def _canon(raw: str) -> str:
    """Map OCR and drafting variants onto one spelling, spaces collapsed."""
    s = raw.translate(_CHAR_MAP)
    s = s.replace("%%c", "Ø").replace("%%C", "Ø").replace("%%d", "°").replace("%%p", "±")
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\+ ?/? ?-", "±", s)  # "+/-", "+-", "+ / -"
    s = re.sub(r"(?<=\d),(?=\d)", ".", s)  # decimal comma
    s = re.sub(r"(?<![\d.])\.(?=\d)", "0.", s)  # .5 -> 0.5
    s = re.sub(r"\s*°", "°", s)  # "45 °"
    s = re.sub(r"([ØR±+\-]) (?=[\d.])", r"\1", s)  # "Ø 12", "± 0.1", "+ 0.2"
    s = re.sub(r"\s*±\s*", "±", s)
    s = re.sub(r"\s*/\s*", "/", s)
    s = re.sub(r"\(\s+", "(", s)
    s = re.sub(r"\s+\)", ")", s)
    s = re.sub(r"(?i)\s*mm$", "", s)
    return s


# ---------------------------------------------------------------- parsing

_CHAMFER_RE = re.compile(rf"(?:(?P<count>\d+) ?[xX] ?)?(?P<len>{_NUM}) ?[xX*] ?(?P<ang>{_NUM})°")
_COUNT_RE = re.compile(r"(?P<count>\d+) ?[xX*] ?(?=[ØRMC(\d])")
_DMS_RE = re.compile(r"(?P<d>\d{1,3})°(?P<m>\d{1,2})['′](?:(?P<s>\d{1,2})[\"″])?")
_NOTES_RE = re.compile(r"\s+(?P<note>THRU(?: ALL)?|TYP\.?|TYPICAL)$", re.I)
_SUFFIX_COUNT_RE = re.compile(r"\s*(?:\((?P<a>\d+) ?[xX]\)|(?P<b>\d+) ?(?:PL\.?|PLACES|[xX]))$")
_HEAD_RE = re.compile(
    rf"(?P<sdia>SØ(?P<sdnom>{_NUM}))|(?P<srad>SR(?P<srnom>{_NUM}))"
    rf"|(?P<thread>M(?P<tnom>{_NUM})(?: ?[xX*] ?(?P<pitch>{_NUM}))?(?:[- ](?P<tclass>\d[a-hA-H]{{1,2}}))?)"
    rf"|(?P<cham>(?P<cpre>CH|C) ?(?P<cnom>{_NUM}))"
    rf"|(?P<dia>Ø(?P<dnom>{_NUM}))"
    rf"|(?P<rad>R(?P<rnom>{_NUM}))"
    rf"|(?P<ang>(?P<anom>{_NUM})°)"
    rf"|(?P<lin>(?P<lnom>{_NUM}))"
)
_SYM_RE = re.compile(rf"±(?P<tol>{_NUM})°?")
_DEV_RE = re.compile(rf" ?\(?(?P<a>[+\-]?{_NUM})°?(?:/| )(?P<b>[+\-]?{_NUM})°?\)?")
_LIMIT_RE = re.compile(rf"(?:/| |-)(?P<low>{_NUM})°?")
_MAXMIN_RE = re.compile(r" ?(?P<which>MAX|MIN)\.?", re.I)
_FIT_TAIL_RE = re.compile(rf" ?(?P<fit>{_FIT}(?:[/ ]{_FIT})?)(?![\d.])")  # "H7/g6", stacked "H7 g6"


def parse(raw: str) -> Callout:
    """Parse one callout's text; raise `GrammarError` when it is not a dimension."""
    s = _canon(raw)
    if not s:
        raise GrammarError("empty callout text")
    try:
        return _parse(s)
    except GrammarError as exc:
        raise GrammarError(f"cannot parse {raw!r}: {exc}") from None


def _parse(s: str) -> Callout:
    m = _CHAMFER_RE.fullmatch(s)
    if m:
        # "4x 90°" (space after x, integer >= 2) counts angles; everything else is a chamfer
        angle_count = (
            m["count"] is None
            and re.fullmatch(rf"\d+ ?[xX*] {_NUM}°", s) is not None
            and "." not in m["len"]
            and int(m["len"]) >= 2
        )
        if not angle_count:
            count = int(m["count"]) if m["count"] else 1
            return Callout(Kind.CHAMFER, Decimal(m["len"]), count=count, angle=Decimal(m["ang"]))

    notes: list[str] = []
    while m := _NOTES_RE.search(s):
        notes.insert(0, m["note"].upper().rstrip(".").replace("TYPICAL", "TYP"))
        s = s[: m.start()]
    count = 1
    if (m := _SUFFIX_COUNT_RE.search(s)) and m.start() > 0 and not _COUNT_RE.match(s):
        count = int(m["a"] or m["b"])  # "Ø6 (4x)", "R2 4 PL": the count written after
        s = s[: m.start()]
    if m := _COUNT_RE.match(s):
        count = int(m["count"])
        if count < 1:
            raise GrammarError("count must be at least 1")
        s = s[m.end() :].lstrip()

    if m := _DMS_RE.fullmatch(s):
        d, mi, se = int(m["d"]), int(m["m"]), int(m["s"] or 0)
        if mi >= 60 or se >= 60:
            raise GrammarError("minutes and seconds run 0-59")
        nominal = Decimal(d) + Decimal(mi) / 60 + Decimal(se) / 3600
        return Callout(Kind.ANGULAR, nominal.quantize(Decimal("0.000001")).normalize(), count=count,
                       dms=(d, mi, se), notes=tuple(notes))  # fmt: skip
    reference = False
    if s.startswith("(") and s.endswith(")") and s.count("(") == 1:
        reference, s = True, s[1:-1].strip()

    h = _HEAD_RE.match(s)
    if not h:
        raise GrammarError("no value found")
    rest = s[h.end() :]
    fit = None
    pitch = angle = None
    prefix = None
    spherical = bool(h["sdia"] or h["srad"])
    if h["sdia"]:
        kind, nominal = Kind.DIAMETER, Decimal(h["sdnom"])
    elif h["srad"]:
        kind, nominal = Kind.RADIUS, Decimal(h["srnom"])
    elif h["thread"]:
        kind, nominal = Kind.THREAD, Decimal(h["tnom"])
        pitch = Decimal(h["pitch"]) if h["pitch"] else None
        fit = h["tclass"]
    elif h["cham"]:
        kind, nominal, prefix = Kind.CHAMFER, Decimal(h["cnom"]), h["cpre"]
    elif h["dia"]:
        kind, nominal = Kind.DIAMETER, Decimal(h["dnom"])
    elif h["rad"]:
        kind, nominal = Kind.RADIUS, Decimal(h["rnom"])
    elif h["ang"]:
        kind, nominal = Kind.ANGULAR, Decimal(h["anom"])
    else:
        kind, nominal = Kind.LINEAR, Decimal(h["lnom"])
        if rest.startswith("°"):
            raise GrammarError("stray degree sign")

    if fit is None and (f := _FIT_TAIL_RE.match(rest)):
        fit, rest = f["fit"].replace(" ", "/"), rest[f.end() :]

    upper = lower = None
    style = ToleranceStyle.NONE
    if m := _SYM_RE.match(rest):
        tol = Decimal(m["tol"])
        upper, lower, style = tol, -tol, ToleranceStyle.SYMMETRIC
        rest = rest[m.end() :]
    elif (m := _DEV_RE.match(rest)) and (m["a"][0] in "+-" or m["b"][0] in "+-"):
        a, b = Decimal(m["a"]), Decimal(m["b"])
        upper, lower = (a, b) if a >= b else (b, a)
        style = ToleranceStyle.DEVIATION
        rest = rest[m.end() :]
    elif m := _MAXMIN_RE.fullmatch(rest):
        if m["which"].upper() == "MAX":
            upper, style = Decimal(0), ToleranceStyle.MAX
        else:
            lower, style = Decimal(0), ToleranceStyle.MIN
        rest = ""
    elif fit is None and (m := _LIMIT_RE.match(rest)):
        other = Decimal(m["low"])
        if other == nominal:
            raise GrammarError("limit dimension with equal limits")
        if rest.startswith("-") and other < nominal:
            raise GrammarError(f"{rest!r} after {nominal} is neither a limit nor a deviation")
        hi, lo = (nominal, other) if nominal > other else (other, nominal)
        nominal, upper, lower = hi, Decimal(0), lo - hi
        style = ToleranceStyle.LIMITS
        rest = rest[m.end() :]

    if rest.strip():
        raise GrammarError(f"unexpected trailing text {rest.strip()!r}")
    if nominal <= 0 and kind is not Kind.ANGULAR:
        raise GrammarError("a dimension must be positive")
    if any(n.startswith("THRU") for n in notes) and kind not in (Kind.DIAMETER, Kind.THREAD):
        raise GrammarError("THRU belongs to a hole or a thread")
    return Callout(
        kind=kind,
        nominal=nominal,
        upper=upper,
        lower=lower,
        fit=fit,
        count=count,
        tolerance=style,
        pitch=pitch,
        angle=angle,
        chamfer_prefix=prefix,
        reference=reference,
        spherical=spherical,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------- formatting


def format_number(d: Decimal) -> str:
    """A number with its written digits, never with an exponent or a negative zero."""
    text = format(d, "f")
    return text[1:] if text.startswith("-") and d == 0 else text


def format_signed(d: Decimal, deg: str = "") -> str:
    """A deviation as written in a stacked tolerance: signed, zero unsigned."""
    if d == 0:
        return format(abs(d), "f") + deg
    return ("+" if d > 0 else "-") + format(abs(d), "f") + deg


def format_callout(c: Callout) -> str:
    """Write the contract's normalised text for a callout."""
    deg = "°" if c.kind is Kind.ANGULAR else ""
    if c.dms is not None:
        d, mi, se = c.dms
        head = f"{d}°{mi}'" + (f'{se}"' if se else "")
        head = f"{c.count}x {head}" if c.count > 1 else head
        return " ".join([head, *c.notes])
    if c.kind is Kind.CHAMFER and c.chamfer_prefix is None:
        head = f"{format_number(c.nominal)}x{format_number(c.angle or Decimal(45))}°"
    elif c.kind is Kind.CHAMFER:
        head = f"{c.chamfer_prefix}{format_number(c.nominal)}"
    elif c.kind is Kind.THREAD:
        head = f"M{format_number(c.nominal)}" + (f"x{format_number(c.pitch)}" if c.pitch is not None else "")
        if c.fit:
            head += f"-{c.fit}"
    elif c.kind is Kind.DIAMETER:
        head = ("S" if c.spherical else "") + f"Ø{format_number(c.nominal)}"
    elif c.kind is Kind.RADIUS:
        head = ("S" if c.spherical else "") + f"R{format_number(c.nominal)}"
    else:
        head = f"{format_number(c.nominal)}{deg}"
    if c.fit and c.kind is not Kind.THREAD:
        head += f" {c.fit}"
    if c.tolerance is ToleranceStyle.SYMMETRIC and c.upper is not None:
        head += f"±{format_number(c.upper)}{deg}"
    elif c.tolerance is ToleranceStyle.DEVIATION and c.upper is not None and c.lower is not None:
        head += f" {format_signed(c.upper, deg)}/{format_signed(c.lower, deg)}"
    elif c.tolerance in (ToleranceStyle.MAX, ToleranceStyle.MIN):
        head += f" {c.tolerance.value.upper()}"
    elif c.tolerance is ToleranceStyle.LIMITS and c.lower is not None:
        # nominal is the upper limit; keep digits of the written lower limit
        head = head.removesuffix(deg) + f"{deg}/{format_number(c.nominal + c.lower)}{deg}"
    if c.reference:
        head = f"({head})"
    if c.count > 1:
        head = f"{c.count}x {head}"
    return " ".join([head, *c.notes])


def normalise(raw: str) -> str:
    """Parse and re-format: the contract's text for whatever the OCR gave."""
    return format_callout(parse(raw))
