"""The photo input: Gradio's image box, with the project's input policy deciding what a file is.

``gr.Image`` opens every upload with Pillow before any handler runs, so a file that is not an
image, or a decompression bomb, failed inside Gradio and the page showed a wordless "Error".
:func:`photo_input` is Gradio's image box (preview, drop, paste) whose preprocessing hands the
handler the uploaded file unread: :func:`gabic.codec.images.load_image` decides, and its refusal
is a sentence the page and the API show (:func:`app.handlers.user_message`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import gradio as gr
from gradio.data_classes import ImageData


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


def photo_input(**kwargs: Any) -> gr.Image:
    """``gr.Image(**kwargs)`` whose preprocessing is :func:`unread_upload` (an instance attribute:
    a subclass of a Gradio component would write a ``.pyi`` stub next to this file)."""
    component = gr.Image(**kwargs)
    component.preprocess = unread_upload  # type: ignore[method-assign]
    return component
