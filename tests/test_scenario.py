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


# ------------------------------------------------------------------ extends and overlays


def test_extends_a_package_scenario_by_name_adds_overlays(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "extends: national-baseline\nname: mine\nscale: 0.01\noverlays: [exit_law_2011.yaml]\n")
    sc = load_scenario(tmp_path / "mine.yaml")
    base = load_scenario()
    assert (sc.name, sc.scale, sc.rules, sc.jurisdictions) == ("mine", 0.01, base.rules,
                                                               base.jurisdictions)
    assert sc.overlays == ["exit_law_2011.yaml"]
    assert sc.rule_path("exit_law_2011.yaml").parent.name == "reforms"


def test_extends_resolves_relative_paths_against_the_extending_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = _write(tmp_path / "a", overlays=["local.yaml"])
    (tmp_path / "a" / "local.yaml").write_text("jurisdiction: national\ndescription: x\n"
                                               "parameters: {}\n")
    child = tmp_path / "b" / "child.yaml"
    child.write_text("extends: ../a/s.yaml\noverlays: [more.yaml]\n")
    (tmp_path / "b" / "more.yaml").write_text("jurisdiction: national\ndescription: y\n"
                                              "parameters: {}\n")
    sc = load_scenario(child)
    assert sc.rule_path(sc.overlays[0]) == (tmp_path / "a" / "local.yaml").resolve()
    assert sc.rule_path(sc.overlays[1]) == tmp_path / "b" / "more.yaml"
    assert base.exists()


@pytest.mark.parametrize("text,pattern", [
    ("extends: nowhere\n", r"child\.yaml:1: extends: no scenario 'nowhere'"),
    ("name: x\nextends: [1]\n", r"child\.yaml:2: extends: expected a scenario"),
    ("extends: child.yaml\n", r"child\.yaml:1: extends: .*cycle"),
    ("extends: national-baseline\nscale: 3\n", r"child\.yaml:2: scale:"),
    ("extends: national-baseline\noverlays: x.yaml\n", r"child\.yaml:2: overlays: expected"),
])
def test_extends_errors_name_file_line_and_key(tmp_path, text, pattern):
    (tmp_path / "child.yaml").write_text(text)
    with pytest.raises(ScenarioError, match=pattern):
        load_scenario(tmp_path / "child.yaml")


def test_error_in_the_parent_names_the_parent(tmp_path):
    _write(tmp_path, scale=5.0)
    (tmp_path / "child.yaml").write_text("extends: s.yaml\nname: c\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: scale"):
        load_scenario(tmp_path / "child.yaml")


def test_overlays_argument_comes_last(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("jurisdiction: national\ndescription: z\nparameters: {}\n")
    sc = load_scenario("national-projection", overlays=[extra])
    assert sc.overlays[-1] == str(extra.resolve())
    assert sc.end == dt.date(2035, 12, 31) and sc.overlays[0] == "projection_inflow.yaml"
    assert load_scenario().end == dt.date(2025, 12, 31)  # the default period is unchanged
