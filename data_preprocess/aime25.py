"""AIME 2025 (math-ai/aime25, split test: 30 problems) -> verl RL parquet (an evaluation set).

    python data_preprocess/aime25.py  # hub -> data/aime25/test.parquet
    python data_preprocess/aime25.py --local_dataset_path FILE --output_dir DIR

Source columns: problem, answer (integer string), id. No worked solutions.
"""

import sys

from smartthinker_verl.data import DatasetSpec, preprocess_main

SPEC = DatasetSpec(
    name="aime25",
    hub_id="math-ai/aime25",
    split="test",
    output_split="test",
    problem_key="problem",
    answer_key="answer",
    metadata_keys=("id",),
    description="AIME 2025 (30 problems, evaluation) -> verl RL parquet.",
)

if __name__ == "__main__":
    sys.exit(preprocess_main(SPEC))
