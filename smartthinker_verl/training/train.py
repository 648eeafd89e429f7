"""Old path of :mod:`smartthinker_verl.launch.train`: runs it (``python -m smartthinker_verl.training.train``)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("smartthinker_verl.launch.train", run_name="__main__", alter_sys=True)
