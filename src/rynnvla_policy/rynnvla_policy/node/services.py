"""The policy node's services: ~/set_instruction, ~/reset, ~/stop, ~/enable_output.

Each handler is a few lines and never blocks on the model: a reset of the model's history is
a request the inference thread carries out before its next inference.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from rynnvla_msgs.srv import SetInstruction
from rynnvla_policy.node.instruction import InstructionError, validate_instruction

if TYPE_CHECKING:
    from rynnvla_policy.node.policy_node import PolicyNode


class PolicyServices:
    """Creates the services on `node` and holds the pending model-reset request."""

    def __init__(self, node: PolicyNode):
        self._node = node
        self._reset_requested = threading.Event()
        guard = node._guard
        self.entities = [
            node.create_service(
                SetInstruction, "~/set_instruction", guard(self._on_set_instruction)
            ),
            node.create_service(Trigger, "~/reset", guard(self._on_reset)),
            node.create_service(Trigger, "~/stop", guard(self._on_stop)),
            node.create_service(SetBool, "~/enable_output", guard(self._on_enable_output)),
        ]

    def take_reset_request(self) -> bool:
        """True once after a reset was requested (called by the inference thread)."""
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            return True
        return False

    def request_reset(self) -> None:
        """Forget model history and queued chunks before the next inference."""
        self._reset_requested.set()
        self._node.controller.reset()
        if self._node._worker is not None:
            self._node._worker.restart_schedule()

    def _on_set_instruction(self, request, response):
        node = self._node
        try:
            text = validate_instruction(request.instruction, node.params.max_instruction_chars)
        except InstructionError as exc:
            response.accepted = False
            response.message = str(exc)
            node.get_logger().warning(f"set_instruction refused: {exc}")
            return response
        changed = text != node.instruction
        node.instruction = text
        if request.reset_history:
            self.request_reset()
        node._instruction_pub.publish(String(data=text))
        response.accepted = True
        response.message = (
            f"instruction set to {text!r}"
            + (" (history reset)" if request.reset_history else "")
            + ("" if changed else " (unchanged)")
        )
        node.get_logger().info(response.message)
        return response

    def _on_reset(self, request, response):
        self.request_reset()
        response.success = True
        response.message = "model history and queued chunks cleared"
        return response

    def _on_stop(self, request, response):
        node = self._node
        node.controller.stop(node.current_position(), node._now_ns())
        response.success = True
        response.message = "holding position; output disabled until ~/enable_output true"
        node.get_logger().warning("stop requested: " + response.message)
        return response

    def _on_enable_output(self, request, response):
        node = self._node
        node.controller.set_output_enabled(
            bool(request.data), node.current_position(), node._now_ns()
        )
        response.success = True
        response.message = (
            "output enabled: chunks go to the controller"
            if request.data
            else "output disabled (dry run): holding position, chunks only on ~/action_chunk"
        )
        node.get_logger().info(response.message)
        return response
