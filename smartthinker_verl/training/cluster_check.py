"""Old path of :mod:`smartthinker_verl.launch.cluster_check`: runs it (``python -m ...training.cluster_check``)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("smartthinker_verl.launch.cluster_check", run_name="__main__", alter_sys=True)
