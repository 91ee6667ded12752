"""The photo input: Gradio's image box, with the project's input policy deciding what a file is.

``gr.Image`` opens every upload with Pillow before any handler runs, so a file that is not an
image, or a decompression bomb, failed inside Gradio and the page showed a wordless "Error".
:class:`PhotoInput` is Gradio's image box (preview, drop, paste) whose preprocessing hands the
handler the uploaded file unread: :func:`gabic.codec.images.load_image` decides, and its refusal
is a sentence the page and the API show (:func:`app.messages.user_message`).
"""

from __future__ import annotations

import base64
import binascii
from abc import ABCMeta

import gradio as gr
from gradio.component_meta import ComponentMeta
from gradio.data_classes import ImageData


class _NoStubFile(ComponentMeta):
    """Gradio's component metaclass writes a ``.pyi`` stub next to the module of every component
    class, for the events it defines; a subclass that defines no events and no ``__init__`` needs
    none of that, so it is made as a plain class."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict):  # noqa: N804
        if "EVENTS" in attrs or "__init__" in attrs:
            raise TypeError(f"{name}: a component with events or an __init__ needs ComponentMeta")
        return ABCMeta.__new__(mcs, name, bases, attrs)


def unread_upload(payload: ImageData | None) -> str | bytes | None:
    """What the handler gets for an image box's ``payload``: the path of the uploaded file, or
    the bytes of a ``data:`` URL sent through the API; nothing is decoded here."""
    if payload is None:
        return None
    if payload.url and payload.url.startswith("data:"):
        _, _, data = payload.url.partition(",")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return data.encode()  # not base64: the policy answers "not an image"
    return payload.path


class PhotoInput(gr.Image, metaclass=_NoStubFile):
    """``gr.Image`` whose preprocessing is :func:`unread_upload`; drawn by the browser as
    Gradio's image box. A class, not a patched instance: Gradio rebuilds a component of a
    session from its class after an update to it."""

    #: Gradio draws a template component with its base class's frontend (Image).
    is_template = True

    def preprocess(self, payload: ImageData | None) -> str | bytes | None:  # type: ignore[override]
        return unread_upload(payload)
