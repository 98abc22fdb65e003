"""ukiyoe: a GAN with an integrated neural cellular automaton for ukiyo-e-like prints."""
