"""Every bad input of `tests/bad_inputs.py` through the `humact` command line: one line, exit 2.

Errors: exit code 2, exactly one line on stderr (`humact COMMAND: error: ...`) naming the
file, no traceback. Inputs the official tools read (a BOM, CR line ends) give the numbers
of their clean twin, with a warning line where humact differs from the official reader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import bad_inputs
from humact.cli import main

REPO = Path(__file__).resolve().parents[1]


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, [line for line in out.err.splitlines() if line.strip()]


def _numbers(path: Path) -> dict:
    doc = json.loads(path.read_text())
    return {k: doc[k] for k in ("mAP", "per_class", "score", "videos") if k in doc}


def _json_out(argv) -> Path:
    return Path(argv[argv.index("--json") + 1])


def _ids(cases):
    return [c.name for c in cases]


ERRORS = [c for c in bad_inputs.CASES if c.expect == "error" and "slow" not in c.tags]
TWINS = [c for c in bad_inputs.CASES if c.expect in ("warning", "same")]


@pytest.mark.parametrize("case", ERRORS, ids=_ids(ERRORS))
def test_bad_input_is_one_line_naming_the_file_with_exit_code_2(case, tmp_path, capsys):
    rc, out, err = _run(case.build(tmp_path), capsys)
    assert rc == 2, (out, err)
    assert len(err) == 1, err
    assert err[0].startswith("humact ") and ": error: " in err[0], err
    for name in case.names:
        assert name in err[0], (name, err[0])
    assert "Traceback" not in out + "\n".join(err)


@pytest.mark.parametrize("case", TWINS, ids=_ids(TWINS))
def test_unlucky_input_scores_as_its_clean_twin(case, tmp_path, capsys):
    argv = case.build(tmp_path)
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    warnings = [line for line in err if ": warning: " in line]
    if case.expect == "warning":
        assert warnings and all(any(n in w for w in warnings) for n in case.names), err
    else:
        assert warnings == [], err
    assert len(warnings) == len(err), err          # nothing else on stderr
    if case.twin is not None:
        twin = case.twin(tmp_path)
        rc2, _, err2 = _run(twin, capsys)
        assert rc2 == 0 and err2 == [], err2
        assert _numbers(_json_out(argv)) == _numbers(_json_out(twin))


def test_outputs_are_checked_before_the_evaluation_runs(tmp_path, capsys, monkeypatch):
    import humact.eval.ava as ava

    def fail(*a, **k):
        raise AssertionError("the evaluation ran before the output was checked")

    monkeypatch.setattr(ava, "evaluate_ava_files", fail)
    for name in ("ava-json-is-a-folder", "ava-plots-is-a-file", "ava-json-would-overwrite-an-input"):
        case = next(c for c in bad_inputs.CASES if c.name == name)
        rc, _, err = _run(case.build(tmp_path / name), capsys)
        assert rc == 2 and len(err) == 1, err


def test_a_refused_pickle_prints_one_line_and_no_traceback_from_the_real_executable(tmp_path):
    case = next(c for c in bad_inputs.CASES if c.name == "pickle-that-runs-code")
    argv = case.build(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "humact.cli", *argv], capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}, timeout=300)
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "data.pkl" in err[0] and "pwned" not in proc.stdout
