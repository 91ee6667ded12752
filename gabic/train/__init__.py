"""Training: streamed data (:mod:`.data`), learning-rate schedule (:mod:`.schedule`), rate points
(:mod:`.rates`), the loop (:mod:`.trainer`, :mod:`.loop`, :mod:`.validation`), the run folder
(:mod:`.runfolder`), the command line (:mod:`.cli`), data throughput (:mod:`.throughput`) and
shipping a run as weights (:mod:`.ship`)."""
