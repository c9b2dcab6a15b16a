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

With ``workers > 1`` the households are spread over that many spawned processes (household ``i``
always in process ``i % workers``, so its Context persists), each running the ClientApp named by
``app_ref``: a round's clients then train side by side, as SuperNodes do.
"""

from __future__ import annotations

import copy
import importlib
import multiprocessing as mp
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor

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
        workers: processes to run clients in (1: this process).
        app_ref: ``"module:attribute"`` of ``client_app``, for the worker processes.
        initializer, initargs: run once in each worker process before any message (e.g. to
            register the data set the nodes read).
    """

    def __init__(
        self,
        client_app: ClientApp,
        node_configs: list[Mapping[str, object]],
        run_config: Mapping[str, object] | None = None,
        drop: DropFn | None = None,
        workers: int = 1,
        app_ref: str | None = None,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
    ) -> None:
        self.client_app = client_app
        self.drop = drop
        if workers > 1 and app_ref is None:
            raise ValueError("workers > 1 needs app_ref ('module:attribute' of the ClientApp)")
        ctx = mp.get_context("spawn")  # not fork: torch's thread pools may be running
        self._pools = [
            ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init, initargs=(app_ref, initializer, initargs))
            for _ in range(workers if workers > 1 else 0)
        ]
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
        pending = []
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
            if self._pools:
                pool = self._pools[(node_id - FIRST_NODE_ID) % len(self._pools)]
                pending.append(pool.submit(_worker_deliver, delivered, self.contexts[node_id]))
            else:
                pending.append(_deliver(self.client_app, delivered, self.contexts[node_id]))
        replies = [p.result() if self._pools else p for p in pending]
        self.replies.extend(replies)
        return replies

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        for pool in self._pools:
            pool.shutdown(cancel_futures=True)
        self._pools = []

    def __del__(self) -> None:
        self.close()


def _deliver(app: ClientApp, message: Message, context: Context) -> Message:
    """One household handles one message; an exception becomes an error reply."""
    try:
        reply = app(message, context)
    except Exception as err:  # noqa: BLE001 - a failing household must not stop the round
        reason = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"
        reply = Message(Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)
    reply.metadata.__dict__["_src_node_id"] = message.metadata.dst_node_id
    return reply


# --- worker processes (workers > 1) ---------------------------------------------------------------

_WORKER: dict[str, object] = {}  # in a worker: its ClientApp and the Contexts of its households


def _worker_init(app_ref: str, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    module, _, attr = app_ref.partition(":")
    _WORKER["app"] = getattr(importlib.import_module(module), attr)
    _WORKER["contexts"] = {}
    if initializer is not None:
        initializer(*initargs)


def _worker_deliver(message: Message, context: Context) -> Message:
    # The worker keeps its own Context per node (state persists across rounds, as on a SuperNode).
    contexts = _WORKER["contexts"]
    own = contexts.setdefault(context.node_id, context)
    return _deliver(_WORKER["app"], message, own)
