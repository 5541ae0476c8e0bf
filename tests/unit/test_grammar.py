"""The callout grammar: a table of literal OCR-ish cases and property-based round trips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dimflow.grammar import Callout, GrammarError, Kind, ToleranceStyle, format_callout, normalise, parse

N = None
# raw text as OCR or a drafter may give it -> (normalised text, kind, nominal, upper, lower, fit, count)
CASES = [
    ("45", ("45", "linear", 45.0, N, N, N, 1)),
    ("45.5", ("45.5", "linear", 45.5, N, N, N, 1)),
    ("45,5", ("45.5", "linear", 45.5, N, N, N, 1)),
    (" 45 ", ("45", "linear", 45.0, N, N, N, 1)),
    (".5", ("0.5", "linear", 0.5, N, N, N, 1)),
    ("45 mm", ("45", "linear", 45.0, N, N, N, 1)),
    ("45±0.1", ("45±0.1", "linear", 45.0, 0.1, -0.1, N, 1)),
    ("45 ± 0,1", ("45±0.1", "linear", 45.0, 0.1, -0.1, N, 1)),
    ("45+/-0.1", ("45±0.1", "linear", 45.0, 0.1, -0.1, N, 1)),
    ("45 +- 0.1", ("45±0.1", "linear", 45.0, 0.1, -0.1, N, 1)),
    ("45%%p0.1", ("45±0.1", "linear", 45.0, 0.1, -0.1, N, 1)),
    ("45 +0.2/-0.1", ("45 +0.2/-0.1", "linear", 45.0, 0.2, -0.1, N, 1)),
    ("45 +0.2 -0.1", ("45 +0.2/-0.1", "linear", 45.0, 0.2, -0.1, N, 1)),
    ("45\n+0.2\n-0.1", ("45 +0.2/-0.1", "linear", 45.0, 0.2, -0.1, N, 1)),
    ("45 + 0,2 / − 0,1", ("45 +0.2/-0.1", "linear", 45.0, 0.2, -0.1, N, 1)),
    ("45 –0.1/+0.2", ("45 +0.2/-0.1", "linear", 45.0, 0.2, -0.1, N, 1)),
    ("20 +0.05/0", ("20 +0.05/0", "linear", 20.0, 0.05, 0.0, N, 1)),
    ("20 0/-0.1", ("20 0/-0.1", "linear", 20.0, 0.0, -0.1, N, 1)),
    ("20 +0.1/+0.05", ("20 +0.1/+0.05", "linear", 20.0, 0.1, 0.05, N, 1)),
    ("4.00 (+0.10/-0.20)", ("4.00 +0.10/-0.20", "linear", 4.0, 0.1, -0.2, N, 1)),
    ("4,00 ( +0,10 / -0,20 )", ("4.00 +0.10/-0.20", "linear", 4.0, 0.1, -0.2, N, 1)),
    ("16.00/15.50", ("16.00/15.50", "linear", 16.0, 0.0, -0.5, N, 1)),
    ("16.00\n15.50", ("16.00/15.50", "linear", 16.0, 0.0, -0.5, N, 1)),
    ("15.50/16.00", ("16.00/15.50", "linear", 16.0, 0.0, -0.5, N, 1)),
    ("R 11.30 11.20", ("R11.30/11.20", "radius", 11.3, 0.0, -0.1, N, 1)),
    ("Ø12", ("Ø12", "diameter", 12.0, N, N, N, 1)),
    ("⌀12", ("Ø12", "diameter", 12.0, N, N, N, 1)),
    ("∅12", ("Ø12", "diameter", 12.0, N, N, N, 1)),
    ("ø12", ("Ø12", "diameter", 12.0, N, N, N, 1)),
    ("Φ12", ("Ø12", "diameter", 12.0, N, N, N, 1)),
    ("%%c12", ("Ø12", "diameter", 12.0, N, N, N, 1)),
    ("Ø 12", ("Ø12", "diameter", 12.0, N, N, N, 1)),
    ("Ø12 H7", ("Ø12 H7", "diameter", 12.0, N, N, "H7", 1)),
    ("Ø12H7", ("Ø12 H7", "diameter", 12.0, N, N, "H7", 1)),
    ("⌀ 12  H7", ("Ø12 H7", "diameter", 12.0, N, N, "H7", 1)),
    ("Ø38H12", ("Ø38 H12", "diameter", 38.0, N, N, "H12", 1)),
    ("Ø20 g6", ("Ø20 g6", "diameter", 20.0, N, N, "g6", 1)),
    ("Ø20 js6", ("Ø20 js6", "diameter", 20.0, N, N, "js6", 1)),
    ("Ø20 H7/g6", ("Ø20 H7/g6", "diameter", 20.0, N, N, "H7/g6", 1)),
    ("Ø20 H7\ng6", ("Ø20 H7/g6", "diameter", 20.0, N, N, "H7/g6", 1)),
    ("Ø12 H7 +0.018/0", ("Ø12 H7 +0.018/0", "diameter", 12.0, 0.018, 0.0, "H7", 1)),
    ("Ø12 H7 (+0.018/0)", ("Ø12 H7 +0.018/0", "diameter", 12.0, 0.018, 0.0, "H7", 1)),
    ("Ø8±0.05", ("Ø8±0.05", "diameter", 8.0, 0.05, -0.05, N, 1)),
    ("⌀8 ±0,05", ("Ø8±0.05", "diameter", 8.0, 0.05, -0.05, N, 1)),
    ("4x Ø6", ("4x Ø6", "diameter", 6.0, N, N, N, 4)),
    ("4X Ø6", ("4x Ø6", "diameter", 6.0, N, N, N, 4)),
    ("4×⌀6", ("4x Ø6", "diameter", 6.0, N, N, N, 4)),
    ("4 x Ø6", ("4x Ø6", "diameter", 6.0, N, N, N, 4)),
    ("6x Ø9 H11", ("6x Ø9 H11", "diameter", 9.0, N, N, "H11", 6)),
    ("R5", ("R5", "radius", 5.0, N, N, N, 1)),
    ("R 5", ("R5", "radius", 5.0, N, N, N, 1)),
    ("R2.5", ("R2.5", "radius", 2.5, N, N, N, 1)),
    ("R2,5", ("R2.5", "radius", 2.5, N, N, N, 1)),
    ("2x R0.2", ("2x R0.2", "radius", 0.2, N, N, N, 2)),
    ("2XR0,2", ("2x R0.2", "radius", 0.2, N, N, N, 2)),
    ("30°", ("30°", "angular", 30.0, N, N, N, 1)),
    ("30 °", ("30°", "angular", 30.0, N, N, N, 1)),
    ("30º", ("30°", "angular", 30.0, N, N, N, 1)),
    ("30%%d", ("30°", "angular", 30.0, N, N, N, 1)),
    ("45°±0.5°", ("45°±0.5°", "angular", 45.0, 0.5, -0.5, N, 1)),
    ("45° ± 0,5°", ("45°±0.5°", "angular", 45.0, 0.5, -0.5, N, 1)),
    ("45,0°", ("45.0°", "angular", 45.0, N, N, N, 1)),
    ("30° +0.5°/0°", ("30° +0.5°/0°", "angular", 30.0, 0.5, 0.0, N, 1)),
    ("4x 90°", ("4x 90°", "angular", 90.0, N, N, N, 4)),
    ("M6", ("M6", "thread", 6.0, N, N, N, 1)),
    ("M6x1", ("M6x1", "thread", 6.0, N, N, N, 1)),
    ("M6×1", ("M6x1", "thread", 6.0, N, N, N, 1)),
    ("M6 x 1", ("M6x1", "thread", 6.0, N, N, N, 1)),
    ("M10x1,25", ("M10x1.25", "thread", 10.0, N, N, N, 1)),
    ("M8x1.25-6g", ("M8x1.25-6g", "thread", 8.0, N, N, "6g", 1)),
    ("M8-6H", ("M8-6H", "thread", 8.0, N, N, "6H", 1)),
    ("2x M5", ("2x M5", "thread", 5.0, N, N, N, 2)),
    ("4X M6x1", ("4x M6x1", "thread", 6.0, N, N, N, 4)),
    ("1x45°", ("1x45°", "chamfer", 1.0, N, N, N, 1)),
    ("1 x 45°", ("1x45°", "chamfer", 1.0, N, N, N, 1)),
    ("1×45°", ("1x45°", "chamfer", 1.0, N, N, N, 1)),
    ("0,5x45°", ("0.5x45°", "chamfer", 0.5, N, N, N, 1)),
    ("2x45°", ("2x45°", "chamfer", 2.0, N, N, N, 1)),
    ("1.5x30°", ("1.5x30°", "chamfer", 1.5, N, N, N, 1)),
    ("2x 1x45°", ("2x 1x45°", "chamfer", 1.0, N, N, N, 2)),
    ("CH5", ("CH5", "chamfer", 5.0, N, N, N, 1)),
    ("CH 0.5", ("CH0.5", "chamfer", 0.5, N, N, N, 1)),
    ("C2", ("C2", "chamfer", 2.0, N, N, N, 1)),
    ("(25.5)", ("(25.5)", "linear", 25.5, N, N, N, 1)),
    ("( 25,5 )", ("(25.5)", "linear", 25.5, N, N, N, 1)),
    ("(Ø12)", ("(Ø12)", "diameter", 12.0, N, N, N, 1)),
]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_literal_cases(raw: str, expected: tuple) -> None:
    text, kind, nominal, upper, lower, fit, count = expected
    fields = parse(raw).fields()
    assert fields == {
        "text": text,
        "kind": kind,
        "nominal": nominal,
        "unit": "deg" if kind == "angular" else "mm",
        "upper": upper,
        "lower": lower,
        "fit": fit,
        "count": count,
    }


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60


def test_reference_flag_and_limits_convention() -> None:
    assert parse("(25.5)").reference
    c = parse("16.00/15.50")
    assert c.tolerance is ToleranceStyle.LIMITS
    assert c.nominal + c.lower == Decimal("15.50")  # nominal is the upper limit


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ABC",
        "MATERIAL: AL 6061-T6",
        "Ø",
        "45 THRU",
        "Ra 3.2",
        "// 0.6 A",
        "45°°",
        "R0",
        "16.00/16.00",
        "+0.05/0",
    ],
)
def test_not_a_callout(raw: str) -> None:
    with pytest.raises(GrammarError):
        parse(raw)


# ---------------------------------------------------------------- properties


def decimals(max_places: int = 3, lo: int = 1, hi: int = 500) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda n, places: (Decimal(n) / Decimal(10) ** places).quantize(Decimal(1).scaleb(-places)),
        st.integers(lo, hi * 1000),
        st.integers(0, max_places),
    ).filter(lambda d: d > 0)


FITS = st.sampled_from(["H7", "H11", "g6", "h6", "js6", "JS9", "H7/g6", "k6", None])


@st.composite
def callouts(draw: st.DrawFn) -> Callout:
    kind = draw(st.sampled_from(list(Kind)))
    nominal = draw(decimals())
    count = draw(st.sampled_from([1, 1, 2, 4, 6, 12]))
    kw: dict = {"count": count}
    if kind is Kind.THREAD:
        kw["pitch"] = draw(st.sampled_from([None, Decimal("1"), Decimal("1.25"), Decimal("0.5")]))
        kw["fit"] = draw(st.sampled_from([None, "6g", "6H"]))
        nominal = Decimal(draw(st.integers(1, 64)))
        return Callout(kind, nominal, **kw)
    if kind is Kind.CHAMFER:
        if draw(st.booleans()):
            kw["angle"] = draw(st.sampled_from([Decimal(45), Decimal(30), Decimal(60), Decimal("22.5")]))
        else:
            kw["chamfer_prefix"] = draw(st.sampled_from(["CH", "C"]))
        return Callout(kind, nominal, **kw)
    style = draw(st.sampled_from(list(ToleranceStyle)))
    if kind is not Kind.ANGULAR:
        kw["fit"] = draw(FITS) if style is not ToleranceStyle.LIMITS else None
    if style is ToleranceStyle.SYMMETRIC:
        t = draw(decimals(3, 0, 2))
        kw |= {"upper": t, "lower": -t}
    elif style is ToleranceStyle.DEVIATION:
        a, b = draw(decimals(3, 0, 1)), draw(decimals(3, 0, 1))
        up, lo = draw(
            st.sampled_from(
                [(a, -b), (a, Decimal(0)), (Decimal(0), -b), (max(a, b), min(a, b)), (-min(a, b), -max(a, b))]
            )
        )
        if up == lo:
            up = up + Decimal("0.01")
        kw |= {"upper": up, "lower": lo}
    elif style is ToleranceStyle.MAX:
        kw["upper"] = Decimal(0)
    elif style is ToleranceStyle.MIN:
        kw["lower"] = Decimal(0)
    elif style is ToleranceStyle.LIMITS:
        nominal = nominal + Decimal(1)
        low = nominal - draw(decimals(2, 0, 1)).min(nominal / 2)
        kw |= {"upper": Decimal(0), "lower": low - nominal}
    kw["reference"] = draw(st.booleans()) and count == 1 and style is ToleranceStyle.NONE
    return Callout(kind, nominal, tolerance=style, **kw)


def uglify(text: str, data: st.DataObject) -> str:
    """What OCR does to a callout: other glyphs, decimal commas, stray spaces."""
    if data.draw(st.booleans()):
        text = text.replace("Ø", data.draw(st.sampled_from(["⌀", "∅", "ø", "Ø "])))
    if data.draw(st.booleans()):
        text = text.replace(".", ",")
    if data.draw(st.booleans()):
        text = text.replace("±", data.draw(st.sampled_from([" ± ", "+/-", "±"])))
    if data.draw(st.booleans()):
        text = text.replace("°", data.draw(st.sampled_from([" °", "º"])))
    if data.draw(st.booleans()):
        text = text.replace("/", data.draw(st.sampled_from([" / ", "\n"])))
    if data.draw(st.booleans()):
        text = "  " + text + " "
    return text


@given(callouts())
def test_format_parse_round_trip(c: Callout) -> None:
    text = format_callout(c)
    back = parse(text)
    assert back == c
    assert format_callout(back) == text


@given(callouts(), st.data())
def test_ocr_variants_parse_to_same_fields(c: Callout, data: st.DataObject) -> None:
    text = format_callout(c)
    assert parse(uglify(text, data)).fields() == c.fields()


@given(callouts())
def test_normalise_is_idempotent(c: Callout) -> None:
    text = format_callout(c)
    assert normalise(normalise(text)) == normalise(text) == text


@pytest.mark.parametrize(
    ("raw", "text", "upper", "lower", "nominal"),
    [
        ("10.00 max.", "10.00 MAX", 0.0, None, 10.0),
        ("Ø6.00 min.", "Ø6.00 MIN", None, 0.0, 6.0),
        ("4xØ5.8-5.85", "4x Ø5.85/5.80", 0.0, -0.05, 5.85),  # SOLIDWORKS' one-line limits, smaller first
        ("R11.30/11.20", "R11.30/11.20", 0.0, -0.1, 11.3),
    ],
)
def test_one_sided_and_one_line_limits(raw, text, upper, lower, nominal):
    f = parse(raw).fields()
    assert (f["text"], f["upper"], f["lower"], f["nominal"]) == (text, upper, lower, nominal)


def test_a_hyphen_before_a_smaller_number_is_refused():
    with pytest.raises(GrammarError, match="neither a limit nor a deviation"):
        parse("12-0.1")


@pytest.mark.parametrize(
    ("raw", "text", "kind", "nominal", "count"),
    [
        ("SØ20", "SØ20", "diameter", 20.0, 1),
        ("SR10 ± 0.1", "SR10±0.1", "radius", 10.0, 1),
        ("30°15'", "30°15'", "angular", 30.25, 1),
        ("2x 30°15'30\"", "2x 30°15'30\"", "angular", 30.258333, 2),
        ("Ø6 THRU", "Ø6 THRU", "diameter", 6.0, 1),
        ("Ø6 H7 THRU ALL", "Ø6 H7 THRU ALL", "diameter", 6.0, 1),
        ("Ø6 (4x)", "4x Ø6", "diameter", 6.0, 4),
        ("R2 4 PL", "4x R2", "radius", 2.0, 4),
        ("Ø8 4 PLACES TYP.", "4x Ø8 TYP", "diameter", 8.0, 4),
        ("M6x1 THRU", "M6x1 THRU", "thread", 6.0, 1),
    ],
)
def test_spherical_dms_notes_and_suffix_counts(raw, text, kind, nominal, count):
    c = parse(raw)
    f = c.fields()
    assert (f["text"], f["kind"], f["nominal"], f["count"]) == (text, kind, nominal, count)
    assert parse(f["text"]) == c  # the normalised text reads back the same


@pytest.mark.parametrize("raw", ["30°75'", "45 THRU", "12.5 4 PLACES extra"])
def test_refused_with_a_reason(raw):
    with pytest.raises(GrammarError, match="cannot parse"):
        parse(raw)
