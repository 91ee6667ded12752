"""The GABIC exploration app (Gradio): ``python -m app``.

- :mod:`.ui`: layout and event wiring; :mod:`.handlers`: one plain function per event;
  :mod:`.texts`: the explanations shown next to each view.
- The app's service layer: :mod:`.inputs` (prepared images, samples), :mod:`.weights` (where
  the models come from, a model per analysis), :mod:`.service` (the explorer: cached analyses,
  RD points, k sweep), :mod:`.cache` (the memory-bounded result cache), :mod:`.session` (one
  user's typed state), :mod:`.exports` (report files, cleaned up).
- :mod:`.memory_bench`: resident memory after many distinct uploads.

Everything drawn comes from :mod:`gabic.viz`; the library never imports this package.
"""
