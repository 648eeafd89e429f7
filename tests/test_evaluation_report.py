"""`smartthinker-verl report`: the paper-style Markdown table, compression against a baseline, the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartthinker_verl.cli import main
from smartthinker_verl.evaluation.report import (
    ModelResult,
    markdown_tables,
    order_benchmarks,
    plot_accuracy_vs_tokens,
)

# The paper's 1.5B numbers (docs/algorithm.md, section 7): mean tokens, pass@1.
BASE = {"math500": (5420, 0.849), "aime25": (15199, 0.242), "amc23": (9320, 0.731)}
SMART = {"math500": (2645, 0.845), "aime25": (8431, 0.250), "amc23": (4421, 0.763)}


def _res(label: str, numbers: dict[str, tuple[float, float]]) -> dict:
    benchmarks = {
        name: {"mean_response_tokens": tokens, "pass@1": acc, "pass@1_stderr": 0.01, "num_problems": 30}
        for name, (tokens, acc) in numbers.items()
    }
    return {"label": label, "benchmarks": benchmarks}


def _write(path: Path, res: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res))
    return path


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]


def test_table_shows_tokens_and_accuracy_per_benchmark_in_paper_order_with_compression() -> None:
    base = ModelResult("R1-Distill-1.5B", _res("", BASE)["benchmarks"])
    smart = ModelResult("SmartThinker", _res("", SMART)["benchmarks"])
    text = markdown_tables([smart], base)
    rows = _table_rows(text)
    assert rows[0] == ["Model", "AIME25", "AMC23", "MATH500", "Average", "Compression", "AES"]
    assert rows[1][:4] == ["R1-Distill-1.5B (baseline)", "15199 / 24.2", "9320 / 73.1", "5420 / 84.9"]
    assert rows[1][-1] == "–"
    assert rows[2][:4] == ["SmartThinker", "8431 / 25.0", "4421 / 76.3", "2645 / 84.5"]
    avg_tokens = (8431 + 4421 + 2645) / 3
    avg_acc = (25.0 + 76.3 + 84.5) / 3
    assert rows[2][4] == f"{avg_tokens:.0f} / {avg_acc:.1f}"
    compressions = [1 - 8431 / 15199, 1 - 4421 / 9320, 1 - 2645 / 5420]
    assert rows[2][5] == f"{100 * sum(compressions) / 3:.1f}%"
    # Second table: per-benchmark compression / accuracy change.
    detail = rows[3:]
    assert detail[0] == ["Model", "AIME25", "AMC23", "MATH500", "Average"]
    assert detail[1][1] == f"{100 * compressions[0]:.1f} / +0.8"
    assert detail[1][3] == f"{100 * compressions[2]:.1f} / -0.4"


def test_a_benchmark_missing_for_one_model_shows_a_dash_and_no_average() -> None:
    partial = ModelResult("partial", _res("", {"aime25": (100, 0.5)})["benchmarks"])
    full = ModelResult("full", _res("", SMART)["benchmarks"])
    rows = _table_rows(markdown_tables([full, partial]))
    assert rows[0] == ["Model", "AIME25", "AMC23", "MATH500", "Average"]
    assert rows[2] == ["partial", "100 / 50.0", "–", "–", "–"]


def test_stderr_is_shown_on_request() -> None:
    rows = _table_rows(markdown_tables([ModelResult("m", _res("", SMART)["benchmarks"])], show_stderr=True))
    assert rows[1][1] == "8431 / 25.0 ± 1.0"


def test_unknown_benchmarks_follow_the_paper_ones_alphabetically() -> None:
    assert order_benchmarks({"zeta", "math500", "aime24", "gsm8k", "alpha", "aime25"}) == [
        "aime24",
        "aime25",
        "math500",
        "gsm8k",
        "alpha",
        "zeta",
    ]


def test_plot_is_a_png(tmp_path: Path) -> None:
    base = ModelResult("base", _res("", BASE)["benchmarks"])
    smart = ModelResult("smart", _res("", SMART)["benchmarks"])
    path = plot_accuracy_vs_tokens([smart], base, tmp_path / "plots" / "acc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli_writes_table_and_plot_with_labels_from_res_json(tmp_path: Path) -> None:
    base = _write(tmp_path / "base" / "res.json", _res("", BASE))  # no label: the folder's name
    smart = _write(tmp_path / "smart.json", _res("SmartThinker-1.5B", SMART))
    out = tmp_path / "report.md"
    assert main(["report", str(smart), "--baseline", str(base), "--out", str(out)]) == 0
    rows = _table_rows(out.read_text())
    assert rows[1][0] == "base (baseline)" and rows[2][0] == "SmartThinker-1.5B"
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_report_cli_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    smart = _write(tmp_path / "smart.json", _res("s", SMART))
    assert main(["report", str(smart), "--labels", "a", "b", "--no-plot"]) == 2
    assert "one per RES.json" in capsys.readouterr().err
    bad = _write(tmp_path / "bad.json", {"pass@1": 0.5})
    assert main(["report", str(bad), "--no-plot"]) == 2
    assert "no 'benchmarks'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json"), "--no-plot"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert main(["report", str(tmp_path / "broken.json"), "--no-plot"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_report_prints_markdown_when_no_out_is_given(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    smart = _write(tmp_path / "smart.json", _res("s", SMART))
    assert main(["report", str(smart), "--no-plot"]) == 0
    assert "| s | 8431 / 25.0 |" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------- AES


def test_aes_formula_on_hand_computed_values() -> None:
    """L 600 against 1000 tokens: dL = 0.4. Accuracy 55 vs 50: dA = +0.1, AES = 0.4 + 3 * 0.1 = 0.7; 45 vs 50:
    dA = -0.1, AES = 0.4 - 5 * 0.1 = -0.1; 50 vs 50: AES = 0.4. 1200 tokens at 50: dL = -0.2, AES = -0.2."""
    from smartthinker_verl.evaluation.report import accuracy_efficiency_score as aes

    assert aes(600, 55, 1000, 50) == pytest.approx(0.7)
    assert aes(600, 45, 1000, 50) == pytest.approx(-0.1)
    assert aes(600, 50, 1000, 50) == pytest.approx(0.4)
    assert aes(1200, 50, 1000, 50) == pytest.approx(-0.2)
    assert aes(600, 0.55, 1000, 0.50) == pytest.approx(0.7)  # the unit of accuracy cancels
    assert aes(600, 55, 0, 50) is None and aes(None, 55, 1000, 50) is None  # a missing number: no score
    with pytest.raises(ValueError, match="positive baseline"):
        aes(600, 55, -1000, 50)


def test_aes_reproduces_the_papers_smartthinker_1_5b_row() -> None:
    """The paper's 1.5B cells (docs/algorithm.md section 7; base 5420/84.9, 15199/24.2, 9320/73.1; SmartThinker
    2645/84.5, 8431/25.0, 4421/76.3). Averages: base 9979.67 tokens / 60.733 %, SmartThinker 5165.67 / 61.933;
    dL = 0.48238, dA = +0.019759, AES = 0.48238 + 3 * 0.019759 = 0.5417: the paper's AES column reads 0.54.
    Per benchmark: MATH500 dL 0.51199, dA -0.004711 -> 0.48843; AIME25 0.44529 + 3 * 0.033058 = 0.54447;
    AMC23 0.52564 + 3 * 0.043776 = 0.65697."""
    from smartthinker_verl.evaluation.report import average_aes

    base = ModelResult("base", _res("", BASE)["benchmarks"])
    smart = ModelResult("SmartThinker", _res("", SMART)["benchmarks"])
    benchmarks = ["aime25", "amc23", "math500"]
    assert average_aes(smart, base, benchmarks) == pytest.approx(0.54, abs=0.01)
    assert average_aes(smart, base, benchmarks) == pytest.approx(0.5417, abs=1e-4)
    assert average_aes(smart, base, ["math500"]) == pytest.approx(0.48843, abs=1e-5)
    assert average_aes(smart, base, ["aime25"]) == pytest.approx(0.54447, abs=1e-5)
    assert average_aes(smart, base, ["amc23"]) == pytest.approx(0.65697, abs=1e-5)
    rows = _table_rows(markdown_tables([smart], base))
    assert rows[2][-1] == "0.54"  # main table, AES of the averages
    assert rows[-1] == ["SmartThinker", "0.54", "0.66", "0.49", "0.54"]  # AES table: per benchmark, then average


def test_several_methods_in_one_table_and_one_plot(tmp_path: Path) -> None:
    base = _write(tmp_path / "base" / "res.json", _res("R1-Distill-1.5B", BASE))
    methods = {
        "SmartThinker": SMART,
        "GRPO": {"math500": (4900, 0.85), "aime25": (14000, 0.25), "amc23": (8800, 0.74)},
        "ShorterBetter": {"math500": (1500, 0.80), "aime25": (5000, 0.20), "amc23": (2500, 0.68)},
    }
    paths = [str(_write(tmp_path / name / "res.json", _res(name, numbers))) for name, numbers in methods.items()]
    out = tmp_path / "report.md"
    assert main(["report", *paths, "--baseline", str(base), "--out", str(out)]) == 0
    rows = _table_rows(out.read_text())
    labels = [row[0] for row in rows[: 1 + 1 + len(methods)]]
    assert labels == ["Model", "R1-Distill-1.5B (baseline)", "SmartThinker", "GRPO", "ShorterBetter"]
    assert all(row[-1] != "–" for row in rows[2:5])
    png = out.with_suffix(".png")
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
