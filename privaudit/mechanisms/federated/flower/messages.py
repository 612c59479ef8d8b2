"""The server's two message helpers: a query to one node, and a reply checked for an error."""

from __future__ import annotations

from flwr.app import ConfigRecord, Message, MessageType, RecordDict

from privaudit.core.errors import InternalError

__all__ = ["check_reply", "query"]


def query(action: str, node: int, extra: dict[str, ConfigRecord] | None = None) -> Message:
    """A QUERY message asking ``node`` for ``action``, with ``extra`` records."""
    content = RecordDict({"query": ConfigRecord({"action": action})})
    for key, record in (extra or {}).items():
        content[key] = record
    return Message(content, dst_node_id=node, message_type=MessageType.QUERY)


def check_reply(reply: Message, what: str) -> Message:
    """``reply``, or InternalError naming the node and its error."""
    if reply.has_error():
        raise InternalError(f"flower: {what} failed on node {reply.metadata.src_node_id}: "
                            f"{reply.error.reason}")
    return reply
