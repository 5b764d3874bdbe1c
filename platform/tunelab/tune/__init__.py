"""Everything that touches Ray, in one package: the trial function, the driver's callbacks (the
store writer, progress), the searcher wrapper, the stopper, the embedded Ray, Ray's log, the
tuner a study runs on, and the Ray tasks of biasvar/confirm/audit. Nothing outside imports Ray."""
