"""ewokscore ``Task`` classes the ewoks tests name (``tests.workflow.ewoks_tasks.X``).

Imported by workers; importing it imports ewokscore, which is the point.
"""

from __future__ import annotations

from ewokscore import Task


class RecordedSum(
    Task,
    input_names=["a", "record"],
    optional_input_names=["b"],
    output_names=["result"],
):
    """``a + b``; appends the node id to the file ``record`` each time it runs."""

    def run(self) -> None:
        with open(self.inputs.record, "a") as file:
            file.write(f"{self.node_id}\n")
        self.outputs.result = self.inputs.a + self.get_input_value("b", 0)


class Fails(Task, input_names=["message"], output_names=["result"]):
    """Raises ``ValueError(message)``."""

    def run(self) -> None:
        raise ValueError(self.inputs.message)


class MissingInputs(Task, optional_input_names=["x"], output_names=["missing"]):
    """Says whether its optional input is ewokscore's ``MISSING_DATA``."""

    def run(self) -> None:
        self.outputs.missing = self.missing_inputs.x


class Doubled(
    Task, input_names=["x"], output_names=["result"], registry_name="trio-wf-doubled"
):
    """``2 * x``, registered under a name of its own."""

    def run(self) -> None:
        self.outputs.result = 2 * self.inputs.x
