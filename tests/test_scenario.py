"""Scenario files: the embedded default is valid, and broken scenarios are rejected clearly."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from dcsim.scenario import ScenarioError, default_scenario_path, load_scenario


def test_default_is_the_national_baseline():
    sc = load_scenario()
    assert (sc.start, sc.end) == (dt.date(2006, 1, 1), dt.date(2025, 12, 31))
    assert sc.scale == 1.0
    assert abs(sum(j.share for j in sc.jurisdictions) - 1.0) < 1e-12
    assert all(j.reference for j in sc.jurisdictions)
    assert len(sc.stacks()) == len(sc.jurisdictions)


def test_overrides_replace_scale_and_seed():
    sc = load_scenario(scale=0.05, seed=7)
    assert (sc.scale, sc.seed) == (0.05, 7)


def _write(tmp_path, **changes):
    data = yaml.safe_load(default_scenario_path().read_text())
    data.update(changes)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_shares_must_sum_to_one(tmp_path):
    data = yaml.safe_load(default_scenario_path().read_text())
    data["jurisdictions"][0]["share"] = 0.9
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match="shares sum to"):
        load_scenario(p)


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path):
    p = _write(tmp_path, colour="red")
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: colour"):
        load_scenario(p)


def test_scale_outside_zero_one_is_an_error(tmp_path):
    with pytest.raises(ScenarioError, match="scale"):
        load_scenario(_write(tmp_path, scale=2.0))


def test_missing_rule_file_is_an_error(tmp_path):
    sc = load_scenario(_write(tmp_path, rules=["national.yaml", "nowhere.yaml"]))
    with pytest.raises(ScenarioError, match="nowhere.yaml"):
        sc.stacks()


def test_local_rule_file_beside_the_scenario_wins(tmp_path):
    (tmp_path / "local.yaml").write_text(
        "jurisdiction: national\ndescription: local\nparameters:\n"
        "  alerts.contact_probability:\n    unit: probability\n    values:\n"
        "      - {from: 2006-01-01, value: 0.5, reference: 'assumption: test'}\n")
    sc = load_scenario(_write(tmp_path, overlays=["local.yaml"]))
    assert sc.stacks()[0].value("alerts.contact_probability", dt.date(2010, 1, 1)) == 0.5
