"""Training: batches (:mod:`.data`, :mod:`.prefetch`), the shared loop (:mod:`.loop`, with
:mod:`.progress` and :mod:`.state_io`) and the trainers (:mod:`.mask`, the VAE trainer).

Trainers only define a model, a loss, an evaluation and presets; batching, prefetching,
logging, checkpoints, exact resume and divergence checks live in the shared modules.
Nothing here is imported by ``restore`` at start-up: jax loads only when a trainer runs.
"""
