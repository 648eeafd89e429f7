"""Execution backends that let verl's real trainer run where stock verl cannot (see ``backends/cpu``)."""
