"""Scenario files: the embedded default is valid, and broken scenarios are rejected clearly."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from dcsim.scenario import ScenarioError, check_rules, default_scenario_path, load_scenario


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
    sc = load_scenario(_write(tmp_path, rules=["dcsim:national.yaml", "nowhere.yaml"]))
    with pytest.raises(ScenarioError, match="nowhere.yaml"):
        sc.stacks()


def test_local_rule_file_beside_the_scenario_wins(tmp_path):
    (tmp_path / "local.yaml").write_text(
        "jurisdiction: national\ndescription: local\nparameters:\n"
        "  alerts.contact_probability:\n    unit: probability\n    values:\n"
        "      - {from: 2006-01-01, value: 0.5, reference: 'assumption: test'}\n")
    sc = load_scenario(_write(tmp_path, overlays=["local.yaml"]))
    assert sc.stacks()[0].value("alerts.contact_probability", dt.date(2010, 1, 1)) == 0.5


def _text_scenario(tmp_path, old: str, new: str):
    """The shipped scenario's text with one edit, so that its lines are the user's lines."""
    text = default_scenario_path().read_text()
    assert old in text
    p = tmp_path / "s.yaml"
    p.write_text(text.replace(old, new, 1))
    return p, text[: text.index(old)].count("\n") + 1


@pytest.mark.parametrize("old,new,key", [
    ("start: 2006-01-01", "start: 2005-01-01", "start"),
    ("end: 2025-12-31", "end: 2005-12-31", "end"),
    ("start: 2006-01-01", "strat: 2006-01-01", "strat"),
    ("seed: 20060101", "sed: 20060101", "sed"),
    ("share: 0.52", "share: 0.62", "jurisdictions"),
    ("id: table1_locality", "id: national_default", "jurisdictions[1].id"),
    ("rules: [dcsim:serious_area.yaml]", "rules: [serious_area.yaml]", "jurisdictions[3].rules[0]"),
    ("rules: [dcsim:serious_area.yaml]", "rules: [dcsim:serius_area.yaml]",
     "jurisdictions[3].rules[0]"),
    ("rules: [dcsim:serious_area.yaml]", "rules: ['']", "jurisdictions[3].rules"),
    ("rules: [dcsim:serious_area.yaml]", "rules: [dcsim:serious_area.yaml, dcsim:app_zibo.yaml]",
     "jurisdictions[3].rules"),
    ("scale: 1.0", "scale: 0", "scale"),
    ("registrants_under_alert: 1300", "registrants_under_alert: 1000000000",
     "district_study.registrants_under_alert"),
])
def test_scenario_errors_name_the_users_file_line_and_key(tmp_path, old, new, key):
    p, line = _text_scenario(tmp_path, old, new)
    with pytest.raises(ScenarioError) as err:
        check_rules(load_scenario(p))
    text = str(err.value)
    assert text.startswith(f"{p}:{line}: {key}") or (  # shares: the list, each share's line
        key == "jurisdictions" and f"(line {line})" in text), text


def test_a_missing_local_file_never_falls_back_to_the_shipped_one(tmp_path):
    p, _ = _text_scenario(tmp_path, "rules: [dcsim:national.yaml,", "rules: [national.yaml,")
    with pytest.raises(ScenarioError, match=r"rule file 'national.yaml' not found.*'dcsim:"):
        load_scenario(p).stacks()


def test_a_period_reversed_in_the_district_study_is_refused(tmp_path):
    p, line = _text_scenario(tmp_path, "  end: 2013-10-31", "  end: 2012-10-31")
    with pytest.raises(ScenarioError, match=rf"s\.yaml:{line}: district_study\.end: .*before"):
        load_scenario(p)


def test_an_override_is_blamed_on_the_command_line():
    with pytest.raises(ScenarioError, match=r"^--scale \(given on the command line\)"):
        load_scenario(scale=0.0)


@pytest.mark.parametrize("content,why", [
    ("a: &a [1]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]\n"
                              for i in range(20)), "values|aliases"),
    ("x: " + "[" * 200 + "]" * 200 + "\n", "nested more than"),
    ("x: !!python/object:os.system {}\n", "tag"),
    ("name: a\rstart: 2006-01-01\n", "line break"),
    ("name: a\x07\n", "character"),
])
def test_hostile_yaml_is_refused_quickly_with_a_line(tmp_path, content, why):
    p = tmp_path / "s.yaml"
    p.write_text(content)
    with pytest.raises(ScenarioError, match=rf"s\.yaml:\d+: .*({why})"):
        load_scenario(p)


def test_special_and_oversized_files_are_refused(tmp_path):
    import os
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2_000_000)
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    for path, why in [(fifo, "not a regular file"), (tmp_path, "folder"), (big, "limit"),
                      (loop, "cannot read"), (tmp_path / "none.yaml", "not found")]:
        with pytest.raises(ScenarioError, match=why):
            load_scenario(path)


def test_a_run_too_large_to_hold_is_refused_at_the_scale(tmp_path):
    (tmp_path / "big.yaml").write_text(
        "jurisdiction: national\ndescription: a huge inflow\nparameters:\n"
        "  registration.newly_found_per_year:\n    unit: persons_per_year\n    values:\n"
        "      - {from: 2006-01-01, value: 9000000, reference: 'assumption: test'}\n")
    p, line = _text_scenario(tmp_path, "overlays: []", "overlays: [big.yaml]")
    check_rules(load_scenario(p, scale=0.01))  # 1.8 million modelled persons: fine
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: scale: .*about 180,000,000 .*limit"):
        check_rules(load_scenario(p))


# ------------------------------------------------------------------ extends and overlays


def test_extends_a_package_scenario_by_name_adds_overlays(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "extends: national-baseline\nname: mine\nscale: 0.01\n"
        "overlays: [dcsim:exit_law_2011.yaml]\n")
    sc = load_scenario(tmp_path / "mine.yaml")
    base = load_scenario()
    assert (sc.name, sc.scale, sc.rules, sc.jurisdictions) == ("mine", 0.01, base.rules,
                                                               base.jurisdictions)
    assert sc.overlays == ["dcsim:exit_law_2011.yaml"]
    assert sc.rule_path("dcsim:exit_law_2011.yaml").parent.name == "reforms"


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
    assert sc.end == dt.date(2035, 12, 31) and sc.overlays[0] == "dcsim:projection_inflow.yaml"
    assert load_scenario().end == dt.date(2025, 12, 31)  # the default period is unchanged

def test_a_run_of_no_one_or_too_many_daily_sums_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match=r"scale: .*no one"):
        check_rules(load_scenario(scale=1e-12))
    many = "".join(f"  - {{id: j{i}, share: 0.005, rules: [], reference: 'assumption: t'}}\n"
                   for i in range(200))
    text = default_scenario_path().read_text()
    head, _, rest = text.partition("jurisdictions:\n")
    tail = rest[rest.index("district_study:"):]
    p = tmp_path / "s.yaml"
    p.write_text(head.replace("end: 2025-12-31", "end: 2100-12-31") + "jurisdictions:\n"
                 + many + tail)
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: jurisdictions: 200 jurisdictions"):
        check_rules(load_scenario(p))
