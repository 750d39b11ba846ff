"""Errors of the store, named after the party at fault."""

from __future__ import annotations


class StoreError(Exception):
    """Root of the store's errors."""


class ThreadNotFound(StoreError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no thread {thread_id!r}")
        self.thread_id = thread_id


class QuestionAsked(StoreError):
    """A message stored only if its thread never asked: this one has (or has a call under
    way, whose child thread may have), so it was not stored; it may be the answer."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} has asked a question")
        self.thread_id = thread_id


class RequestNotFound(StoreError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no request {request_id!r}")
        self.request_id = request_id


class RequestAlreadyAnswered(StoreError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"request {request_id!r} was already answered")
        self.request_id = request_id


class AlreadyCounted(RequestAlreadyAnswered):
    """This person's approval was counted before (on this or another of their addresses)."""


class RequestWithdrawn(StoreError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"request {request_id!r} is no longer pending: it was withdrawn")
        self.request_id = request_id


class RequestExpired(StoreError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"request {request_id!r} expired before it was answered")
        self.request_id = request_id


class ArgumentsChanged(StoreError):
    """A decision names arguments other than the ones pending: it decides nothing."""

    def __init__(self, request_id: str, expected: str, given: str) -> None:
        super().__init__(f"request {request_id!r} is for other arguments than the ones approved")
        self.request_id = request_id
        self.expected = expected
        self.given = given


class NotEditable(StoreError):
    """An edit changes arguments the tool's policy does not let an approver change."""

    def __init__(self, request_id: str, fields: list[str], editable: list[str]) -> None:
        may = ", ".join(editable) or "none"
        super().__init__(
            f"request {request_id!r}: {', '.join(fields)} may not be changed (editable: {may})"
        )
        self.request_id = request_id
        self.fields = fields


class GrantNotOffered(StoreError):
    """A grant asked for that the tool's policy does not offer."""

    def __init__(self, request_id: str, grant: str) -> None:
        super().__init__(f"request {request_id!r} cannot be approved for this {grant}")
        self.request_id = request_id
        self.grant = grant


class QuorumIncomplete(StoreError):
    """An edit or a grant from an approval that would not complete the quorum."""

    def __init__(self, request_id: str, needed: int) -> None:
        super().__init__(
            f"request {request_id!r} needs {needed} approvals: an edit or a grant is accepted "
            "only from the approval that completes them"
        )
        self.request_id = request_id


class NotAllowed(StoreError):
    """The responder may not decide this request."""

    def __init__(self, request_id: str, responder: str) -> None:
        super().__init__(f"{responder} may not answer request {request_id!r}")
        self.request_id = request_id
        self.responder = responder


class LeaseLost(StoreError):
    """A worker wrote with a fencing token that is no longer current: its write was refused."""

    def __init__(self, thread_id: str, token: int) -> None:
        super().__init__(f"lease on {thread_id!r} with token {token} is no longer held")
        self.thread_id = thread_id
        self.token = token
