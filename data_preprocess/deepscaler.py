"""DeepScaleR-Preview (agentica-org/DeepScaleR-Preview-Dataset, train) -> verl RL parquet: the training set.

    python data_preprocess/deepscaler.py  # hub -> data/deepscaler/train.parquet
    python data_preprocess/deepscaler.py --local_dataset_path FILE --output_dir DIR

Source columns: problem, solution (may be empty), answer (str; a few rows have none and are dropped).
"""

import sys

from smartthinker_verl.data import DatasetSpec, preprocess_main

SPEC = DatasetSpec(
    name="deepscaler",
    hub_id="agentica-org/DeepScaleR-Preview-Dataset",
    split="train",
    output_split="train",
    problem_key="problem",
    answer_key="answer",
    solution_key="solution",
    description="DeepScaleR-Preview (40,315 problems, the paper's training set) -> verl RL parquet.",
)

if __name__ == "__main__":
    sys.exit(preprocess_main(SPEC))
