"""What a visitor reads when something goes wrong: one sentence per problem, no server paths,
and the wrapper that turns a handler's exception into a status line and a notice."""

from __future__ import annotations

import functools
import logging
import re
import traceback
from collections.abc import Callable
from typing import Any

import gradio as gr

from gabic.codec.images import ImageInputError
from gabic.zoo import CheckpointError

from .session import Session

log = logging.getLogger("gabic.app")


#: Errors whose message is meant for the user (bad input, missing weights).
USER_ERRORS = (ImageInputError, CheckpointError, ValueError, FileNotFoundError, KeyError)


def notify(message: str) -> None:
    """Show ``message`` as a warning notice on the page (in the server log outside a request)."""
    try:
        gr.Warning(message)
    except Exception:
        log.warning(message)


#: An absolute path in a message (the server's folders): shown as its last part only.
_SERVER_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"()\[\]:;,]+/)+([^\s/'\"()\[\]:;,]*)")


def without_server_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part (``/srv/x/photo.jpg`` -> ``photo.jpg``):
    what a visitor reads names no folder of the server."""
    return _SERVER_PATH.sub(lambda found: found[1] or "…", text)


def user_message(error: BaseException) -> str:
    """One sentence for the visitor about a user error: an :class:`ImageInputError`'s reason
    (what is wrong and what to do; it names no file), else the error's text without server paths."""
    if isinstance(error, ImageInputError):
        text = error.reason
    else:
        text = without_server_paths(str(error).strip("'\"")) or type(error).__name__
    return text if text.endswith((".", "!", "?")) else f"{text}."


def failure_message(error: BaseException) -> str:
    if isinstance(error, USER_ERRORS):
        return f"Problem: {user_message(error)}"
    log.error("unexpected error in a handler:\n%s", "".join(traceback.format_exception(error)))
    text = without_server_paths(f"{type(error).__name__}: {error}")
    return f"Problem: something went wrong ({text}). The server log has details."


def previous_photo_note(session: Session) -> str:
    """The photo description when the views no longer belong to what the photo box shows."""
    return f"The results below are still those of the previous photo: {session.image.describe()}."


def refused_views(sentence: str, previous: Any) -> dict[str, Any]:
    """The status and photo description after a refused upload: the reason, and whether the
    views below still show the previous photo (they keep their values)."""
    if not isinstance(previous, Session):
        return {"status": f"Problem: {sentence}"}
    return {
        "status": f"Problem: {sentence} The results below are still those of the previous photo.",
        "image_info": previous_photo_note(previous),
    }


def guarded(outputs: tuple[str, ...] | None, state: bool = True) -> Callable:
    """Turn exceptions into a warning toast and a status message; other outputs (named by
    ``outputs``, in their order) keep their value.

    The wrapped handler returns a dict of views (and, when ``state``, a new session
    first: ``(session, views)``); the wrapper flattens it for Gradio when called
    with ``flat=True`` and passes it through otherwise (tests).
    """

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args: Any, flat: bool = False, **kwargs: Any) -> Any:
            try:
                result = handler(*args, **kwargs)
            except Exception as error:
                message = failure_message(error)
                notify(message.removeprefix("Problem: "))
                if not flat:
                    raise
                views = {name: gr.skip() for name in outputs or ()}
                if "status" in views:
                    views["status"] = message
                values = [views[name] for name in outputs or ()]
                return tuple([gr.skip(), *values]) if state else tuple(values)
            if not flat:
                return result
            if state:
                session, views = result
                return tuple([session, *(views.get(name, gr.skip()) for name in outputs or ())])
            return tuple(result.get(name, gr.skip()) for name in outputs or ())

        return wrapper

    return decorate
