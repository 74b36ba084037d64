"""Rule files: loading, validation errors (file, line, key), stacking, and the resolved table."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pytest

from dcsim.catalogue import CATALOGUE, N_PARAMS, PARAM_NAMES, UNITS, Par
from dcsim.rules import (
    OutOfWindowError,
    RuleError,
    RuleFile,
    RuleStack,
    UnknownParameterError,
    Window,
    _value_problem,
    is_assumption,
    listing,
    load_rule_file,
    resolve_table,
    rules_hash,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
NATIONAL = FIXTURES / "national.yaml"
OVERLAY = FIXTURES / "overlay_2020.yaml"
ZIBO = FIXTURES / "zibo.yaml"
D = dt.date
CONTACT = "alerts.contact_probability"


# ------------------------------------------------------------------ helpers


def _value_for(i: int, unit: str) -> float:
    """A distinct valid value per catalogue position, so a column mix-up shows."""
    if unit in ("probability", "share"):
        return (i % 20) / 20
    if unit == "flag":
        return i % 2
    if unit == "tier":
        return i % 4
    if unit in ("count", "persons"):
        return i
    return i + 0.5


def _full_text(
    jurisdiction: str = "national",
    start: str = "2006-01-01",
    skip: tuple[str, ...] = (),
    ends: dict[str, str] | None = None,
    offset: float = 0.0,
) -> str:
    """A rule file setting every catalogue parameter (one window each, unless ended early)."""
    ends = ends or {}
    lines = [f"jurisdiction: {jurisdiction}", "description: generated for tests", "parameters:"]
    for i, name in enumerate(PARAM_NAMES):
        if name in skip:
            continue
        unit = CATALOGUE[name].unit
        value = _value_for(i, unit)
        if offset and unit not in ("probability", "share", "flag", "tier", "count"):
            value += offset
        lines += [
            f"  {name}:",
            f"    unit: {unit}",
            "    values:",
            f"      - from: {start}",
            *([f"        to: {ends[name]}"] if name in ends else []),
            f"        value: {value}",
            "        reference: 'assumption: test value'",
        ]
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _expected(i: int) -> float:
    return float(_value_for(i, CATALOGUE[PARAM_NAMES[i]].unit))


# ------------------------------------------------------------------ a valid file


def test_valid_file_loads_with_lines_and_values():
    rf = load_rule_file(NATIONAL)
    assert isinstance(rf, RuleFile)
    assert rf.path == NATIONAL
    assert rf.jurisdiction == "national"
    assert set(rf.parameters) == {
        CONTACT,
        "management.test_interval_days.high",
        "exit.release_allowed",
        "management.entry_tier.using",
    }
    p = rf.parameters[CONTACT]
    assert p.unit == "probability"
    assert p.line == 4
    w0, w1 = p.windows
    assert (w0.start, w0.end, w0.value, w0.line, w0.value_line) == (
        D(2006, 1, 1),
        D(2013, 12, 31),
        0.26,
        8,
        10,
    )
    assert (w1.start, w1.end, w1.value, w1.line) == (D(2014, 1, 1), None, 0.3, 12)
    assert not w0.is_assumption and w1.is_assumption
    assert w1.note == "open-ended"
    assert rf.parameters["exit.release_allowed"].windows[0].value == 1.0  # `true` for a flag


def test_values_resolve_to_the_right_window():
    stack = RuleStack([load_rule_file(NATIONAL)])
    assert stack.jurisdiction == "national"
    assert stack.value(CONTACT, D(2006, 1, 1)) == 0.26
    assert stack.value(CONTACT, D(2013, 12, 31)) == 0.26
    assert stack.value(CONTACT, D(2014, 1, 1)) == 0.3
    assert stack.value(CONTACT, D(2040, 6, 1)) == 0.3
    window, rf = stack.window(CONTACT, D(2013, 12, 31))
    assert (window.line, window.reference, rf.path) == (8, "paper fn 22", NATIONAL)
    window, _ = stack.window(CONTACT, D(2014, 1, 1))
    assert window.line == 12
    assert stack.value("management.test_interval_days.high", D(2008, 6, 1)) == 90
    assert stack.names() == set(load_rule_file(NATIONAL).parameters)


def test_overlay_changes_values_from_its_date_and_leaves_earlier_dates_alone():
    stack = RuleStack([load_rule_file(NATIONAL), load_rule_file(OVERLAY)])
    assert stack.value(CONTACT, D(2012, 5, 1)) == 0.26
    assert stack.value(CONTACT, D(2019, 12, 31)) == 0.3
    assert stack.value(CONTACT, D(2020, 1, 1)) == 0.5
    assert stack.value(CONTACT, D(2030, 1, 1)) == 0.5
    window, rf = stack.window(CONTACT, D(2019, 12, 1))
    assert rf.path == NATIONAL and window.line == 12
    window, rf = stack.window(CONTACT, D(2020, 1, 1))
    assert rf.path == OVERLAY and window.calibrated == "targets.yaml, 2026-11-29"
    # parameters the overlay does not set are untouched
    assert stack.value("exit.release_allowed", D(2021, 1, 1)) == 1.0


def test_locality_file_overrides_national_and_sets_jurisdiction():
    stack = RuleStack([load_rule_file(NATIONAL), load_rule_file(ZIBO)])
    assert stack.jurisdiction == "zibo"
    assert stack.value("exit.release_allowed", D(2010, 1, 1)) == 0.0
    assert stack.value(CONTACT, D(2010, 1, 1)) == 0.26


def test_stack_rejects_a_file_of_another_locality(tmp_path):
    other = _write(tmp_path, "chengdu.yaml", ZIBO.read_text().replace("zibo", "chengdu"))
    with pytest.raises(ValueError, match="chengdu"):
        RuleStack([load_rule_file(NATIONAL), load_rule_file(ZIBO), load_rule_file(other)])
    with pytest.raises(ValueError, match="another jurisdiction"):
        RuleStack([load_rule_file(ZIBO)], jurisdiction="chengdu")


# ------------------------------------------------------------------ lookups that must fail


def test_lookup_before_the_first_window_raises_out_of_window():
    stack = RuleStack([load_rule_file(NATIONAL)])
    with pytest.raises(OutOfWindowError) as info:
        stack.value("management.test_interval_days.high", D(2008, 5, 31))
    err = info.value
    assert err.name == "management.test_interval_days.high"
    assert err.jurisdiction == "national"
    assert err.date == D(2008, 5, 31)
    assert err.files == (NATIONAL,)
    text = str(err)
    assert "management.test_interval_days.high" in text and "2008-05-31" in text
    assert "national" in text and "national.yaml" in text and "2008-06-01" in text


def test_lookup_of_a_parameter_no_file_sets_raises_out_of_window():
    stack = RuleStack([load_rule_file(NATIONAL)])
    with pytest.raises(OutOfWindowError, match="no file of the stack sets it"):
        stack.value("grid.coverage_share", D(2010, 1, 1))


def test_lookup_of_an_unknown_name_suggests_the_closest():
    stack = RuleStack([load_rule_file(NATIONAL)])
    with pytest.raises(UnknownParameterError) as info:
        stack.value("alerts.contact_probabilty", D(2010, 1, 1))
    assert isinstance(info.value, KeyError)
    assert "did you mean 'alerts.contact_probability'" in str(info.value)


# ------------------------------------------------------------------ the resolved table


def test_resolve_table_shape_and_content(tmp_path):
    national = load_rule_file(_write(tmp_path, "national.yaml", _full_text()))
    local = load_rule_file(
        _write(tmp_path, "zibo.yaml", _full_text("zibo", start="2010-01-01", offset=100.0))
    )
    stacks = [RuleStack([national]), RuleStack([national, local])]
    start, end = D(2009, 11, 15), D(2010, 2, 1)
    table = resolve_table(stacks, start, end)
    assert table.dtype == np.float64
    assert table.shape == (2, 4, N_PARAMS)  # Nov, Dec, Jan, Feb
    expected = np.array([_expected(i) for i in range(N_PARAMS)])
    for m in range(4):
        np.testing.assert_array_equal(table[0, m], expected)
    np.testing.assert_array_equal(table[1, :2], table[0, :2])  # before the locality file
    hours = Par.ALERTS__OFFICER_HOURS_PER_RESPONSE
    assert table[1, 2, hours] == _expected(hours) + 100.0
    assert table[1, 3, hours] == _expected(hours) + 100.0
    assert table[0, 2, hours] == _expected(hours)
    # every entry agrees with a point lookup on the month's first day (start for month 0)
    days = [start, D(2009, 12, 1), D(2010, 1, 1), D(2010, 2, 1)]
    for j, stack in enumerate(stacks):
        for m, day in enumerate(days):
            for name in PARAM_NAMES:
                assert table[j, m, Par[name.upper().replace(".", "__")]] == stack.value(name, day)


def test_resolve_table_uses_start_itself_for_the_first_month(tmp_path):
    late = _full_text(start="2006-01-01", ends={CONTACT: "2009-10-31"})
    stack = RuleStack([load_rule_file(_write(tmp_path, "n.yaml", late))])
    table = resolve_table([stack], D(2009, 10, 31), D(2009, 10, 31))
    assert table.shape == (1, 1, N_PARAMS)
    with pytest.raises(OutOfWindowError):
        resolve_table([stack], D(2009, 10, 31), D(2009, 11, 1))


def test_resolve_table_raises_for_a_parameter_missing_from_a_stack(tmp_path):
    full = load_rule_file(_write(tmp_path, "full.yaml", _full_text()))
    holey = load_rule_file(
        _write(tmp_path, "holey.yaml", _full_text(skip=("grid.visits_done_share",)))
    )
    with pytest.raises(OutOfWindowError) as info:
        resolve_table([RuleStack([full]), RuleStack([holey])], D(2010, 1, 1), D(2010, 12, 31))
    err = info.value
    assert (err.name, err.jurisdiction, err.date) == (
        "grid.visits_done_share",
        "national",
        D(2010, 1, 1),
    )
    assert err.files == (holey.path,)


def test_resolve_table_raises_at_the_first_uncovered_month(tmp_path):
    text = _full_text(ends={"exit.release_allowed": "2010-06-30"})
    stack = RuleStack([load_rule_file(_write(tmp_path, "n.yaml", text))])
    with pytest.raises(OutOfWindowError) as info:
        resolve_table([stack], D(2010, 1, 1), D(2010, 12, 31))
    assert (info.value.name, info.value.date) == ("exit.release_allowed", D(2010, 7, 1))
    assert "2006-01-01 to 2010-06-30" in str(info.value)
    with pytest.raises(OutOfWindowError) as info:
        resolve_table([stack], D(2005, 12, 15), D(2006, 2, 1))
    assert info.value.date == D(2005, 12, 15)  # start itself, not its month's first day


def test_resolve_table_is_fast(tmp_path):
    files = [
        load_rule_file(_write(tmp_path, f"f{k}.yaml", _full_text(start=f"{2006 + k}-01-01")))
        for k in range(3)
    ]
    stacks = [RuleStack(files[: 1 + k % 3]) for k in range(10)]
    t0 = time.perf_counter()
    table = resolve_table(stacks, D(2006, 1, 1), D(2025, 12, 31))
    assert time.perf_counter() - t0 < 1.0
    assert table.shape == (10, 240, N_PARAMS)


# ------------------------------------------------------------------ broken files

BASE = """\
jurisdiction: national
description: test
parameters:
  alerts.contact_probability:
    unit: probability
    values:
      - from: 2006-01-01
        to: 2013-12-31
        value: 0.26
        reference: paper fn 22
      - from: 2014-01-01
        value: 0.3
        reference: "assumption: x"
"""
P = "parameters.alerts.contact_probability"
DUP_PARAM = """\
  alerts.contact_probability:
    unit: probability
    values:
      - from: 2006-01-01
        value: 0.2
        reference: paper fn 22
"""

# (id, text edit (old, new), expected line, expected key, expected message fragment)
BROKEN = [
    ("unknown-key", ("value: 0.3", "vale: 0.3"), 12, f"{P}.values[1].vale", "unknown key 'vale'"),
    ("unknown-top-key", (BASE, BASE + "author: me\n"), 14, "author", "unknown key 'author'"),
    (
        "unknown-parameter",
        ("alerts.contact_probability:", "alerts.contact_probabilty:"),
        4,
        "parameters.alerts.contact_probabilty",
        "did you mean 'alerts.contact_probability'",
    ),
    (
        "wrong-unit",
        ("unit: probability", "unit: share"),
        5,
        f"{P}.unit",
        "wrong unit: share, expected probability",
    ),
    ("unknown-unit", ("unit: probability", "unit: percent"), 5, f"{P}.unit", "unknown unit"),
    (
        "probability-1.5",
        ("value: 0.26", "value: 1.5"),
        9,
        f"{P}.values[0].value",
        "probability 1.5 is outside [0, 1]",
    ),
    (
        "not-a-number",
        ("value: 0.3", "value: high"),
        12,
        f"{P}.values[1].value",
        "must be a number",
    ),
    (
        "gap",
        ("from: 2014-01-01", "from: 2015-01-01"),
        11,
        f"{P}.values[1].from",
        "gap in dates between 2013-12-31 and 2015-01-01",
    ),
    (
        "overlap",
        ("from: 2014-01-01", "from: 2013-01-01"),
        11,
        f"{P}.values[1].from",
        "overlapping windows",
    ),
    (
        "open-window-followed",
        ("to: 2013-12-31", "to: null"),
        11,
        f"{P}.values[1].from",
        "open-ended",
    ),
    (
        "mid-month-from",
        ("from: 2006-01-01", "from: 2006-01-15"),
        7,
        f"{P}.values[0].from",
        "not the first day of a month",
    ),
    (
        "mid-month-to",
        ("to: 2013-12-31", "to: 2013-12-30"),
        8,
        f"{P}.values[0].to",
        "not the last day of a month",
    ),
    (
        "impossible-date",
        ("from: 2006-01-01", "from: 2006-13-01"),
        7,
        f"{P}.values[0].from",
        "month must be in 1..12",
    ),
    (
        "bad-reference",
        ("reference: paper fn 22", "reference: paper 22"),
        10,
        f"{P}.values[0].reference",
        "'paper fn N'",
    ),
    (
        "missing-reference",
        ('reference: "assumption: x"', "note: x"),
        11,
        f"{P}.values[1].reference",
        "missing required key 'reference'",
    ),
    (
        "duplicate-parameter",
        (BASE, BASE + DUP_PARAM),
        14,
        "parameters.alerts.contact_probability",
        "duplicate key 'alerts.contact_probability' (first at line 4)",
    ),
    (
        "duplicate-window-key",
        ("value: 0.26\n", "value: 0.26\n        value: 0.27\n"),
        10,
        f"{P}.values[0].value",
        "duplicate key 'value' (first at line 9)",
    ),
    (
        "bad-jurisdiction",
        ("jurisdiction: national", "jurisdiction: Zi Bo"),
        1,
        "jurisdiction",
        "locality id",
    ),
]


@pytest.mark.parametrize(
    "old_new, line, key, fragment", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_broken_file_is_rejected_with_file_line_and_key(tmp_path, old_new, line, key, fragment):
    old, new = old_new
    assert BASE.count(old) == 1
    path = _write(tmp_path, "broken.yaml", BASE.replace(old, new))
    with pytest.raises(RuleError) as info:
        load_rule_file(path)
    err = info.value
    assert (err.path, err.line, err.key) == (path, line, key), str(err)
    assert str(err).startswith(f"{path}:{line}: {key}: "), str(err)
    assert fragment in str(err)


def test_probability_message_has_the_documented_form(tmp_path):
    path = _write(tmp_path, "national.yaml", BASE.replace("value: 0.26", "value: 1.5"))
    with pytest.raises(RuleError) as info:
        load_rule_file(path)
    assert str(info.value) == (
        f"{path}:9: parameters.alerts.contact_probability.values[0].value: "
        "probability 1.5 is outside [0, 1]"
    )


def test_bad_reference_message_names_the_accepted_forms(tmp_path):
    path = _write(tmp_path, "b.yaml", BASE.replace("paper fn 22", "paper fn 22;paper fn 23"))
    with pytest.raises(RuleError) as info:
        load_rule_file(path)
    text = str(info.value)
    assert "'paper fn N'" in text and "'evidence.md#anchor'" in text
    assert "'assumption: <reason>'" in text


def test_yaml_syntax_error_reports_its_line(tmp_path):
    text = BASE.replace("reference: paper fn 22", "reference: paper fn 22: (Table 1)")
    path = _write(tmp_path, "syntax.yaml", text)
    with pytest.raises(RuleError) as info:
        load_rule_file(path)
    err = info.value
    assert (err.path, err.line, err.key) == (path, 10, None)
    assert str(err).startswith(f"{path}:10: YAML syntax error: ")


def test_unclosed_flow_sequence_reports_a_line(tmp_path):
    path = _write(tmp_path, "syntax.yaml", BASE.replace("value: 0.3", "value: [0.3"))
    with pytest.raises(RuleError, match=r"syntax\.yaml:13: YAML syntax error"):
        load_rule_file(path)


def test_empty_file_is_rejected(tmp_path):
    with pytest.raises(RuleError, match="empty rule file"):
        load_rule_file(_write(tmp_path, "empty.yaml", "# nothing\n"))


# ------------------------------------------------------------------ references, listing, hash


@pytest.mark.parametrize(
    "reference, ok, assumption",
    [
        ("paper fn 22", True, False),
        ("paper fn 11-16", True, False),
        ("paper fn 37 (22 tests in three years)", True, False),
        ("evidence.md#tier-schedule", True, False),
        ("evidence.md#zibo-app 2019 notice", True, False),
        ("assumption: no data", True, True),
        ("paper fn 22; assumption: scaled to 2014", True, True),
        ("paper fn 16-11", False, False),
        ("paper fn", False, False),
        ("evidence.md#Bad_Anchor", False, False),
        ("assumption:", False, False),
        ("assumption: ", False, False),
        ("paper fn 22; ", False, False),
    ],
)
def test_reference_forms(tmp_path, reference, ok, assumption):
    text = BASE.replace("reference: paper fn 22", f"reference: '{reference}'")
    path = _write(tmp_path, "r.yaml", text)
    if ok:
        assert load_rule_file(path).parameters[CONTACT].windows[0].is_assumption == assumption
    else:
        with pytest.raises(RuleError, match=r"r\.yaml:10: .*reference: bad reference"):
            load_rule_file(path)
    assert is_assumption(reference) == assumption


def test_every_unit_has_a_value_check():
    """A unit added to the catalogue must get its own range check here, not the default."""
    special = {"probability", "share", "flag", "tier", "count", "persons"}
    non_negative = {"day", "year", "hours", "per_year", "persons_per_year", "multiplier"}
    assert set(UNITS) == special | non_negative
    for unit in non_negative:
        assert _value_problem(unit, 0) is None and _value_problem(unit, -1) is not None
    assert _value_problem("tier", 4) is not None and _value_problem("tier", 3) is None
    assert _value_problem("count", 2.5) is not None and _value_problem("count", 7) is None
    assert _value_problem("persons", 0.5) is not None and _value_problem("persons", 10) is None
    assert _value_problem("flag", 2) is not None and _value_problem("flag", False) is None
    assert _value_problem("day", True) is not None


def test_models_are_strict_and_check_themselves():
    with pytest.raises(ValueError, match="first day of a month"):
        Window(start=D(2006, 1, 2), value=1.0, reference="paper fn 1")
    with pytest.raises(ValueError, match="extra"):
        Window(start=D(2006, 1, 1), value=1.0, reference="paper fn 1", colour="red")


def test_listing_rows_follow_the_stack(tmp_path):
    stacks = {
        "national": RuleStack([load_rule_file(NATIONAL), load_rule_file(OVERLAY)]),
        "zibo": RuleStack([load_rule_file(NATIONAL), load_rule_file(ZIBO)]),
    }
    rows = listing(stacks)
    contact = [r for r in rows if r["jurisdiction"] == "national" and r["name"] == CONTACT]
    assert [(r["from"], r["to"], r["value"]) for r in contact] == [
        (D(2006, 1, 1), D(2013, 12, 31), 0.26),
        (D(2014, 1, 1), D(2019, 12, 31), 0.3),
        (D(2020, 1, 1), None, 0.5),
    ]
    assert [r["is_assumption"] for r in contact] == [False, True, True]
    assert contact[1]["source"] == f"{NATIONAL}:12"
    assert contact[2]["calibrated"] == "targets.yaml, 2026-11-29"
    assert contact[0]["unit"] == "probability"
    release = [
        r for r in rows if r["jurisdiction"] == "zibo" and r["name"] == "exit.release_allowed"
    ]
    assert [(r["value"], r["file"], r["line"]) for r in release] == [(0, str(ZIBO), 7)]


def test_rules_hash_depends_on_content_and_order(tmp_path):
    a, b = load_rule_file(NATIONAL), load_rule_file(OVERLAY)
    h = rules_hash([a, b])
    assert len(h) == 64 and h == rules_hash([load_rule_file(NATIONAL), load_rule_file(OVERLAY)])
    assert h != rules_hash([b, a])
    edited = _write(tmp_path, "overlay_2020.yaml", OVERLAY.read_text().replace("0.5", "0.55"))
    assert h != rules_hash([a, load_rule_file(edited)])
    copy = _write(tmp_path, "national.yaml", NATIONAL.read_text())
    assert rules_hash([load_rule_file(copy), b]) == h  # the name, not the directory, counts


# ------------------------------------------------------------------ stated ranges (`range:`)

RANGED = BASE.replace(
    "        value: 0.3\n", "        value: 0.3\n        range: [0.1, 0.6]\n"
)


def test_range_is_read_and_listed(tmp_path):
    f = load_rule_file(_write(tmp_path, "ranged.yaml", RANGED))
    first, second = f.parameters[CONTACT].windows
    assert first.range is None and second.range == (0.1, 0.6)
    rows = listing({"national": RuleStack([f])})
    assert [r["range"] for r in rows if r["name"] == CONTACT] == [None, (0.1, 0.6)]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("range: [0.1]", "range must be a list of two numbers"),
        ("range: 0.5", "range must be a list of two numbers"),
        ("range: [low, 0.6]", "range must be a list of two numbers"),
        ("range: [true, 0.6]", "range must be a list of two numbers"),
        ("range: [0.6, 0.1]", "runs backwards"),
        ("range: [0.4, 0.6]", "value 0.3 lies outside its range [0.4, 0.6]"),
        ("range: [0.1, 0.2]", "value 0.3 lies outside its range"),
        ("range: [0.1, 1.5]", "range high bound: probability 1.5 is outside [0, 1]"),
        ("range: [-0.1, 0.6]", "range low bound: probability -0.1 is outside [0, 1]"),
    ],
)
def test_broken_range_names_file_line_and_key(tmp_path, text, fragment):
    path = _write(tmp_path, "broken.yaml", RANGED.replace("range: [0.1, 0.6]", text))
    with pytest.raises(RuleError) as info:
        load_rule_file(path)
    err = info.value
    assert (err.path, err.line, err.key) == (path, 13, f"{P}.values[1].range"), str(err)
    assert fragment in str(err)


def test_range_respects_the_unit_of_whole_numbers(tmp_path):
    text = """\
jurisdiction: national
description: test
parameters:
  exit.min_negative_tests.other:
    unit: count
    values:
      - {from: 2006-01-01, value: 12, reference: "assumption: x", range: [6.5, 18]}
"""
    with pytest.raises(RuleError, match=r"range low bound: count must be a whole number"):
        load_rule_file(_write(tmp_path, "count.yaml", text))
    ok = load_rule_file(_write(tmp_path, "count_ok.yaml", text.replace("6.5", "6")))
    assert ok.parameters["exit.min_negative_tests.other"].windows[0].range == (6.0, 18.0)


def test_window_model_checks_its_range():
    """Windows built in memory (calibration writes them) are held to the same rule."""
    with pytest.raises(ValueError, match="lies outside its range"):
        from dcsim.rules import Parameter

        Parameter(name=CONTACT, unit="probability", windows=(
            Window(start=D(2006, 1, 1), value=0.3, reference="assumption: x", range=(0.4, 0.6)),
        ))


def test_embedded_rules_state_ranges_for_evidence_backed_assumptions():
    """relapse 0.43-0.9 (evidence.md#relapse); lost to follow-up from the Yinchuan floor (5%,
    a stock share) to 30% of entrants, since an alert finds a lost person (an assumption)."""
    from importlib import resources

    path = Path(str(resources.files("dcsim").joinpath("data/rules/national.yaml")))
    f = load_rule_file(path)
    assert f.parameters["drug_use.relapse_probability.heroin"].windows[0].range == (0.43, 0.9)
    lost = f.parameters["registration.lost_to_follow_up_share"].windows[0]
    assert lost.range == (0.05, 0.3) and "evidence.md#lost-to-follow-up" in lost.reference
