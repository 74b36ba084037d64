"""The two commands as a user types them: `dcsim run` and `dcsim rules`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dcsim.cli import app
from dcsim.rules import is_assumption, listing, reference_problem
from dcsim.scenario import load_scenario

runner = CliRunner()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    outs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp(name)
        res = runner.invoke(app, ["run", "--scale", "0.002", "--seed", "5", "--out", str(out)],
                            env={"COLUMNS": "160"})
        assert res.exit_code == 0, res.output
        outs.append((out, res.output))
    return outs


def test_run_writes_tables_and_manifest(two_runs):
    out, text = two_runs[0]
    for name in ("monthly", "intrusions_per_person_year", "intrusion_summary", "exit",
                 "paper_figures"):
        assert (out / f"{name}.parquet").stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["scale"] == 0.002
    assert manifest["persons_simulated"] > 8_000
    assert "785,900" in text and "4,700,000" in text and "26.00%" in text


def test_same_seed_gives_byte_identical_tables(two_runs):
    (a, _), (b, _) = two_runs
    for p in sorted(a.glob("*.parquet")):
        assert p.read_bytes() == (b / p.name).read_bytes(), p.name
    ma = json.loads((a / "manifest.json").read_text())["tables"]
    mb = json.loads((b / "manifest.json").read_text())["tables"]
    assert ma == mb


def test_comparison_table_is_saved(two_runs):
    out, _ = two_runs[0]
    df = pd.read_parquet(out / "paper_figures.parquet")
    assert set(df["source"]) >= {"paper fn 7", "paper fn 8, 48", "paper fn 22"}
    row = df[df["figure"] == "registered by end of March 2007"].iloc[0]
    # the sweep is a rule (fn 7): the model enters it within rounding of one person / scale
    assert abs(row["model"] - 785_900) <= 2 / 0.002


def test_run_table_fits_80_columns_and_cuts_no_figure_or_source(tmp_path):
    res = runner.invoke(app, ["run", "--scale", "0.002", "--seed", "5", "--out",
                              str(tmp_path / "o")], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(ln) for ln in lines) <= 80 and "\u2026" not in res.output  # no ellipsis
    text = " ".join(" ".join(ln.split()) for ln in lines)
    df = pd.read_parquet(tmp_path / "o" / "paper_figures.parquet")
    for r in df.itertuples():
        verdict = "met" if r.within_tolerance else "MISSED"
        assert f"({r.source}; tolerance {r.tolerance}: {verdict})" in text, r.source
        assert all(w in text for w in r.figure.split()), r.figure


def test_broken_rule_file_fails_with_file_line_and_key(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "jurisdiction: national\ndescription: bad\nparameters:\n"
        "  alerts.contact_probability:\n    unit: probability\n    values:\n"
        "      - {from: 2006-01-01, value: 1.5, reference: 'assumption: test'}\n")
    sc = tmp_path / "s.yaml"
    base = load_scenario().model_dump(mode="json", exclude={"source"})
    base["overlays"] = ["bad.yaml"]
    import yaml
    sc.write_text(yaml.safe_dump(base))
    res = runner.invoke(app, ["run", str(sc), "--scale", "0.001", "--out", str(tmp_path / "o")],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 2
    assert "bad.yaml:7" in res.output and "alerts.contact_probability" in res.output


def test_every_rule_value_in_force_has_a_valid_reference():
    sc = load_scenario()
    stacks = dict(zip([j.id for j in sc.jurisdictions], sc.stacks(), strict=True))
    rows = listing(stacks)
    assert len(rows) > 100
    for r in rows:
        assert r["reference"].strip(), r
        assert reference_problem(r["reference"]) is None, r
        assert r["is_assumption"] == is_assumption(r["reference"])


def test_rules_command_lists_references_and_flags_assumptions():
    res = runner.invoke(app, ["rules"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "paper fn 19" in res.output and "ASSUMPTION" in res.output
    res_a = runner.invoke(app, ["rules", "--assumptions"], env={"COLUMNS": "250"})
    n_all = int(res.output.strip().splitlines()[-1].split()[0])
    n_assume = int(res_a.output.strip().splitlines()[-1].split()[0])
    assert 0 < n_assume < n_all


def test_rules_at_80_columns_shows_every_value_and_reference_whole():
    res = runner.invoke(app, ["rules"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(len(ln) for ln in res.output.splitlines()) <= 80
    assert "\u2026" not in res.output  # nothing cut to an ellipsis
    text = " ".join(res.output.split())
    sc = load_scenario()
    for r in listing(dict(zip([j.id for j in sc.jurisdictions], sc.stacks(), strict=True))):
        assert " ".join(r["reference"].split()) in text, r["reference"]
        assert f"{r['from']}..{r['to'] or ''} {r['value']:g} {r['unit']}" in text, r["name"]
    n_shown = int(res.output.strip().splitlines()[-1].split()[0])
    wide = runner.invoke(app, ["rules"], env={"COLUMNS": "250"})
    assert n_shown == int(wide.output.strip().splitlines()[-1].split()[0])


def _bad_argument_cases(tmp: Path) -> list[tuple[list[str], str]]:
    a_file = tmp / "a_file"
    a_file.write_text("x")
    pkg = str(Path(__import__("dcsim").__file__).parent / "out")
    fifo = tmp / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    return [
        (["run", "--out", str(a_file)], "--out"),
        (["run", "--out", str(a_file / "x")], "--out"),
        (["run", "--out", "/dev/null"], "--out"),
        (["run", "--out", pkg], "--out"),
        (["run", "--scale", "0"], "--scale"),
        (["run", "--scale", "1.5"], "--scale"),
        (["run", "--scale", "nan"], "--scale"),
        (["run", "--seed", "-1"], "--seed"),
        (["run", "--seed", str(2**63)], "--seed"),
        (["run", str(tmp)], "SCENARIO"),
        (["run", str(fifo)], "SCENARIO"),
        (["run", str(tmp / "missing.yaml")], "SCENARIO"),
        (["rules", "--jurisdiction", "nope"], "--jurisdiction"),
        (["rules", str(a_file)], str(a_file)),
        (["fit", "--seeds", "0"], "--seeds"),
        (["fit", "--seeds", "-3"], "--seeds"),
        (["fit", "--out", str(a_file)], "--out"),
        (["fit", "--first-seed", "-1"], "--first-seed"),
        (["fit", "--targets", str(tmp)], "--targets"),
        (["sensitivity", "--trajectories", "0"], "--trajectories"),
        (["sensitivity", "--levels", "1"], "--levels"),
        (["sensitivity", "--scale", "0"], "--scale"),
        (["sensitivity", "--out", "/dev/null"], "--out"),
        (["calibrate", "--seeds", ""], "--seeds"),
        (["calibrate", "--seeds", "1,x"], "--seeds"),
        (["calibrate", "--scale", "0"], "--scale"),
        (["calibrate", "--trials", "0"], "--trials"),
        (["calibrate", "--storage", str(tmp)], "--storage"),
        (["calibrate", "--storage", "/dev/null"], "--storage"),
        (["calibrate", "--out", str(a_file / "c.yaml")], "--out"),
        (["calibrate", "--targets", str(fifo)], "--targets"),
    ]


def test_bad_arguments_are_refused_in_one_line_naming_the_argument(tmp_path):
    for args, argument in _bad_argument_cases(tmp_path):
        res = runner.invoke(app, args, env={"COLUMNS": "80"})
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2, (args, res.output)
        assert isinstance(res.exception, SystemExit), (args, res.exception)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, res.output)
        assert argument in lines[0], (args, res.output)
    assert not list(tmp_path.glob("*/manifest.json"))


def test_markup_in_a_scenario_value_is_printed_as_text(tmp_path):
    import yaml
    base = load_scenario().model_dump(mode="json", exclude={"source"})
    base["rules"] = [*base["rules"], "[/bold] x [red.yaml"]
    sc = tmp_path / "s.yaml"
    sc.write_text(yaml.safe_dump(base, sort_keys=False))
    res = runner.invoke(app, ["rules", str(sc)], env={"COLUMNS": "80"})
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert "[/bold] x [red.yaml" in res.output


def test_a_full_disk_is_a_clear_message_and_leaves_no_manifest(tmp_path, monkeypatch):
    import errno

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--scale", "0.002", "--seed", "5", "--out", str(out)],
                        env={"COLUMNS": "80"})
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert "error: --out: cannot write the tables" in res.output
    assert "No space left on device" in res.output
    assert not (out / "manifest.json").exists() and not list(out.glob("*.parquet"))


def test_rules_refuses_exactly_what_run_refuses(tmp_path):
    """Mistakes found only across files (shares summing to 1, the period's start before the
    rules) are refused by `dcsim rules` with the message `dcsim run` gives."""
    text = Path(load_scenario().source).read_text()
    (tmp_path / "entry.yaml").write_text(
        "jurisdiction: national\ndescription: shares\nparameters:\n"
        "  registration.share.voluntary:\n    unit: share\n    values:\n"
        "      - {from: 2010-01-01, value: 0.5, reference: 'assumption: test'}\n")
    cases = {"shares": text.replace("overlays: []", "overlays: [entry.yaml]"),
             "early": text.replace("start: 2006-01-01", "start: 2005-01-01")}
    for name, body in cases.items():
        sc = tmp_path / f"{name}.yaml"
        sc.write_text(body)
        out = [runner.invoke(app, [cmd, str(sc)], env={"COLUMNS": "80"}) for cmd in
               ("rules", "run")]
        assert [r.exit_code for r in out] == [2, 2], [r.output for r in out]
        assert out[0].output == out[1].output and out[0].output.startswith("error: "), name
        where = {"shares": "entry.yaml:7: parameters.registration.share.voluntary",
                 "early": "early.yaml:9: start: start 2005-01-01 is outside 2006-01-01"}
        assert where[name] in out[0].output, out[0].output


def test_python_dash_m_runs_the_command_line():
    """`python -m dcsim` is the same command line as `dcsim` (no traceback, same help)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dcsim", "reforms"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "exit_law_2011" in out.stdout and "Traceback" not in out.stderr


def test_reforms_lists_every_reform_and_switch_whole_within_80_columns():
    """`dcsim reforms` shows each package reform and structural switch by its full name, with
    the start of its description, and no line is wider than 80 columns or cut to an ellipsis."""
    from dcsim.compare import package_reforms, package_switches
    from dcsim.rules import load_rule_file

    res = CliRunner().invoke(app, ["reforms"], env={"COLUMNS": "80"}, terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in res.output
    names = {line.split("│")[1].strip() for line in lines if line.count("│") == 3}
    every = {**package_reforms(), **package_switches()}
    assert set(every) <= names
    flat = " ".join(" ".join(line.split("│")[2].split()) for line in lines
                    if line.count("│") == 3)
    for path in every.values():
        first = " ".join(load_rule_file(path).description.split()[:3])
        assert first in flat, path.name
    assert res.output.index("structural switches") > res.output.index("exit_law_2011")


@pytest.mark.parametrize("command", [["calibrate", "--trials", "2"], ["recover", "--trials", "1"],
                                     ["uncertainty", "--steps", "2", "--burn-in", "1",
                                      "--draws", "1"]])
def test_fitting_commands_refuse_a_period_that_misses_their_targets(tmp_path, command,
                                                                   scenario_to_2012):
    """A scenario ending in 2012 leaves the 2019 targets unscored: calibrate, recover and
    uncertainty say so in one line naming SCENARIO, before any run or file."""
    out = tmp_path / "out"
    args = [command[0], str(scenario_to_2012), *command[1:], "--out",
            str(out / "o.yaml" if command[0] == "calibrate" else out)]
    res = runner.invoke(app, args, terminal_width=200)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: SCENARIO: its period (2006-01-01 to 2012-12-31) "
                                 "misses ")
    assert "existing_users_2019" in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()
