"""check-config / --dry-run name the rows whose ground truth the grader cannot parse (a real math-verify parse)."""

from smartthinker_verl.data import build_row, write_parquet
from smartthinker_verl.launch.compose import compose_config
from smartthinker_verl.launch.validate import validate_config


def test_dry_run_names_rows_whose_ground_truth_cannot_be_parsed(tmp_path):
    rows = [
        build_row(data_source="s", problem="p", ground_truth=truth, split="train", index=i)
        for i, truth in enumerate(["12", "}"])
    ]
    train = write_parquet(rows, tmp_path / "train.parquet")
    config = compose_config([f"data.train_files='{train}'", f"data.val_files=['{train}']"])
    errors = validate_config(config, require_files=False)
    named = [
        error for error in errors if f"{train} row 1 (data_source 's', extra_info.index 1): ground truth '}}'" in error
    ]
    assert len(named) == 2  # once per file list that names it
    assert not any("row 0" in error for error in errors)
