"""The decoder stage: a conditional DDPM on design images (`DecoderModel`), its samples and their quality."""
