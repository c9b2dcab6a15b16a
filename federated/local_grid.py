"""An in-process Flower ``Grid``: the fast single-machine path.

A Flower strategy drives rounds through a ``Grid`` (``send_and_receive``). In a deployment the
Grid is the SuperLink and every message crosses the network to a SuperNode running the
household's ``ClientApp``. :class:`LocalGrid` delivers the same messages to the same ``ClientApp``
in this process, with one persistent :class:`flwr.app.Context` per household (so a client's
``context.state`` survives between rounds, as on a SuperNode). Nothing else changes: the strategy,
the messages and the averaging are Flower's.

Each message gets its own copy of the content (as after the network), and a ``ClientApp`` that
raises becomes an error reply, as a SuperNode reports it. ``drop`` simulates households that do
not answer (a dead device): their messages get no reply at all.
"""

from __future__ import annotations

import copy
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

CLIENT_APP_RAISED_EXCEPTION = 300  # Flower's ErrorCode for a ClientApp that raised
SERVER_NODE_ID = 1  # Flower's SUPERLINK_NODE_ID: the sender of every instruction
FIRST_NODE_ID = 1000  # household i is node FIRST_NODE_ID + i

DropFn = Callable[[int, Message], bool]  # (node_id, message) -> True: no reply


class LocalGrid(Grid):
    """Delivers a strategy's messages to ``client_app`` in-process, one Context per household.

    Args:
        client_app: the households' ``ClientApp`` (the one a SuperNode would run).
        node_configs: one ``node_config`` per household (what ``flower-supernode --node-config``
            passes in a deployment); household ``i`` gets node id ``FIRST_NODE_ID + i``.
        run_config: the run config every client sees (``context.run_config``).
        drop: optional; returns True for messages that should go unanswered.
    """

    def __init__(
        self,
        client_app: ClientApp,
        node_configs: list[Mapping[str, object]],
        run_config: Mapping[str, object] | None = None,
        drop: DropFn | None = None,
    ) -> None:
        self.client_app = client_app
        self.drop = drop
        # Flower stamps every message it builds with the process's task identity; a ServerApp
        # process has one set by the SuperLink, this process gets the server's here.
        if TaskIdentity._run_id is None:
            TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 0, SERVER_NODE_ID, 0
        self.contexts = {
            FIRST_NODE_ID + i: Context(run_id=0, node_id=FIRST_NODE_ID + i, node_config=dict(cfg), state=RecordDict(), run_config=dict(run_config or {}))
            for i, cfg in enumerate(node_configs)
        }
        self._run = Run.create_empty(run_id=0)
        self.messages_sent: list[Message] = []  # what left the server (for inspection in tests)
        self.replies: list[Message] = []  # what came back

    def set_run(self, run: Run) -> None:
        """Record the run (not needed in-process)."""
        self._run = run

    @property
    def run(self) -> Run:
        """The run this grid serves."""
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None) -> Message:
        """A message to one household, as Flower's grids make it."""
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """The households' node ids."""
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Not used in-process: :meth:`send_and_receive` delivers directly."""
        raise NotImplementedError("LocalGrid delivers in send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Not used in-process: :meth:`send_and_receive` delivers directly."""
        raise NotImplementedError("LocalGrid delivers in send_and_receive")

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Run every message through its household's ClientApp; return the replies that came."""
        replies = []
        for message in messages:
            node_id = message.metadata.dst_node_id
            if node_id not in self.contexts:
                raise ValueError(f"message for unknown node {node_id}")
            message.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            delivered = Message(copy.deepcopy(message.content), node_id, message.metadata.message_type,
                                group_id=message.metadata.group_id)
            delivered.metadata.__dict__["_message_id"] = message.metadata.message_id
            self.messages_sent.append(message)
            if self.drop is not None and self.drop(node_id, message):
                continue
            try:
                reply = self.client_app(delivered, self.contexts[node_id])
            except Exception as err:  # noqa: BLE001 - a failing household must not stop the round
                reason = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"
                reply = Message(Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=delivered)
            reply.metadata.__dict__["_src_node_id"] = node_id
            replies.append(reply)
        self.replies.extend(replies)
        return replies
