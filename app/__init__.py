"""The GABIC exploration app (Gradio): ``python -m app``. UI code only; the computation is in
:mod:`gabic.explore`."""
