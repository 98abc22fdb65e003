"""Phase 3's innovation stage: the sampler's initial latents optimised toward grammar (`InnovationModel`)."""
