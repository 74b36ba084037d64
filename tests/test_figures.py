"""The run's table of the paper's figures: published values read from targets.yaml, the model's
read by each target's measure, and no figure presented as a result (predicted) while a rule
sets it or the calibration uses it, nor as calibrated when the fit that wrote calibrated.yaml
never saw it."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from dcsim import figures
from dcsim.fit import fit_table, role
from dcsim.rules import listing
from dcsim.scenario import load_scenario
from dcsim.targets import load_targets


@pytest.fixture(scope="module")
def targets():
    return load_targets()


def _footnotes(text: str) -> set[str]:
    """Footnote numbers cited, 'paper fn 8, 48' -> {'8', '48'}."""
    out: set[str] = set()
    for m in re.finditer(r"fn ([\d ,\-]+)", text):
        out.update(re.findall(r"\d+", m.group(1)))
    return out


def _set_by_a_rule(target, rows) -> list[str]:
    """Rule windows of the default scenario that fix the target's value: a window citing the
    same paper footnote whose value is the figure, or whose yearly rate over the window up to
    the target's date adds up to it (the 785,900 sweep: 628,720 a year for 15 months)."""
    notes = _footnotes(target.source)
    found = []
    for r in rows:
        if not notes or not notes & _footnotes(r["reference"]) or r["is_assumption"]:
            continue
        if r["value"] == pytest.approx(target.value, rel=1e-9):
            found.append(r["name"])
        at = getattr(target.measure, "at", None)
        if r["unit"].endswith("_per_year") and at is not None and r["to"] is not None:
            if r["to"] == at:
                months = ((r["to"].year - r["from"].year) * 12 + r["to"].month
                          - r["from"].month + 1)
                if r["value"] * months / 12 == pytest.approx(target.value, rel=1e-3):
                    found.append(r["name"])
    return found


@pytest.fixture(scope="module")
def rule_rows():
    sc = load_scenario()
    return listing(dict(zip([j.id for j in sc.jurisdictions], sc.stacks(), strict=True)))


def test_no_figure_is_predicted_while_a_rule_sets_it_or_the_calibration_uses_it(
        targets, rule_rows):
    fitted = {i for f in targets.calibration.fitted for i in f.informs}
    for t in targets.targets:
        used, why = role(targets, t)
        if _set_by_a_rule(t, rule_rows):
            assert used == "input", (t.id, _set_by_a_rule(t, rule_rows))
        elif t.weight > 0 or t.id in fitted:
            assert used == "calibrated", t.id
        else:
            assert used == "predicted", t.id
        assert why


def test_the_sweep_total_and_the_contact_share_are_inputs(targets, rule_rows):
    for tid, rule in (("registered_2007_03", "registration.newly_found_per_year"),
                      ("district_contact_share", "alerts.contact_probability")):
        assert rule in _set_by_a_rule(targets.get(tid), rule_rows)
        assert role(targets, targets.get(tid))[0] == "input"
    assert role(targets, targets.get("survey_travel"))[0] == "predicted"  # weight 0
    assert role(targets, targets.get("existing_users_2019"))[0] == "calibrated"


def test_run_table_reads_published_values_and_roles_from_targets(baseline, targets):
    table = figures.comparison(baseline)
    assert list(table.columns) == figures.COLUMNS
    assert list(table["id"]) == [t.id for t in targets.hard]
    for r in table.itertuples():
        t = targets.get(r.id)
        assert (r.figure, r.source, r.published, r.unit) == (t.label, t.source, t.value, t.unit)
        assert r.model == pytest.approx(t.evaluate(baseline))
        assert r.role == role(targets, t)[0]
        assert r.tolerance == t.tolerance.describe(t.unit)
        assert r.within_tolerance == t.tolerance.passes(r.model, t.value)
        assert r.relative_error == pytest.approx((r.model - t.value) / t.value)
    roles = dict(zip(table["id"], table["role"], strict=True))
    assert roles["registered_2007_03"] == roles["district_contact_share"] == "input"


def test_run_table_follows_a_changed_targets_file(baseline, targets):
    """No copy in code: a different published value in the file shows in the table."""
    t = targets.get("registered_2019")
    changed = targets.model_copy(update={"targets": [
        x.model_copy(update={"value": 5_000_000.0}) if x.id == t.id else x
        for x in targets.targets]})
    table = figures.comparison(baseline, changed).set_index("id")
    assert table.loc["registered_2019", "published"] == 5_000_000.0


def test_fit_table_marks_each_target(targets):
    import pandas as pd

    values = pd.DataFrame([{t.id: t.value for t in targets.targets}])
    table = fit_table(targets, values).set_index("id")
    assert table.loc["registered_2007_03", "role"] == "input"
    assert table.loc["district_contact_share", "role"] == "input"
    assert table.loc["relapse_6_months", "role"] == "calibrated"
    assert table.loc["survey_renting", "role"] == "predicted"
    assert "informs fitted relapse_probability" in table.loc["relapse_6_months", "role_why"]
    assert dt.date(2007, 3, 31) == targets.get("registered_2007_03").measure.at


def _fit_header(targets) -> dict[str, float]:
    """Target id -> published value, as the header of the embedded calibrated.yaml lists the
    targets the fit that wrote it was scored on (calibration.py writes the lines)."""
    from importlib import resources

    text = resources.files("dcsim.data.rules").joinpath("calibrated.yaml").read_text()
    found = re.findall(r"^#   (\w+): \S+ \(published (\S+)\)$", text, flags=re.M)
    assert found, "calibrated.yaml lists no model values in its header"
    return {tid: float(v) for tid, v in found}


def test_a_figure_marked_calibrated_was_in_the_fit_that_wrote_calibrated_yaml(targets):
    """A target given weight, or a new published value, after the last fit would be marked
    calibrated although the fit never saw it: refit, or give it weight 0 (predicted)."""
    seen = _fit_header(targets)
    assert set(seen) <= {t.id for t in targets.targets}, "the header names unknown targets"
    for t in targets.targets:
        if role(targets, t)[0] == "calibrated":
            assert t.id in seen, f"{t.id} is marked calibrated but the fit never saw it"
            assert seen[t.id] == pytest.approx(t.value, rel=1e-5), (
                f"{t.id}: published {t.value:g} now, {seen[t.id]:g} when fitted")
