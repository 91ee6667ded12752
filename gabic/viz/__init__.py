"""Every figure, overlay and report, drawn from the data of :mod:`gabic.inspect` and
:mod:`gabic.eval`; used alike by the app, the notebooks and the evaluation command line.
A view is a function from data to a figure, with no state."""
