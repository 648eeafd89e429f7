"""MATH-500 (HuggingFaceH4/MATH-500, split test: 500 problems) -> verl RL parquet (an evaluation set).

    python data_preprocess/math500.py  # hub -> data/math500/test.parquet
    python data_preprocess/math500.py --local_dataset_path FILE --output_dir DIR

Source columns: problem, solution, answer (LaTeX), subject, level (1-5), unique_id.
"""

import sys

from smartthinker_verl.data import DatasetSpec, preprocess_main

SPEC = DatasetSpec(
    name="math500",
    hub_id="HuggingFaceH4/MATH-500",
    split="test",
    output_split="test",
    problem_key="problem",
    answer_key="answer",
    solution_key="solution",
    metadata_keys=("subject", "level", "unique_id"),
    description="MATH-500 (500 problems, evaluation) -> verl RL parquet.",
)

if __name__ == "__main__":
    sys.exit(preprocess_main(SPEC))
