"""Reports for humans: the static HTML viewer (:mod:`.html`) and training-curve plots (:mod:`.lossplot`)."""
