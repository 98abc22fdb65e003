"""The design system's models: image -> structure -> grammar and metadata -> image, and phase 3's loops.

- `nets/`: the plain networks (`nn.Module`s; no Lightning, no data code).
- one sub-package per stage, in pipeline order: `encoder/`, `abstractor/`, `decoder/`, `finetune/`,
  `innovation/`, each with its LightningModule in `module.py` (`EncoderModel`, ...) and its own metrics,
  plots and losses.
- shared by several stages: `schema.py` (the vocabulary and tensor layout, also the data's), `stages.py`
  (the stage graph: which stage's checkpoint feeds which, under which config key), `sampling.py`,
  `features.py`, `grammar_reward.py`, `judged_designs.py`.
"""

# Moved or renamed code; old checkpoints' stored configs name it (see training.toolkit.moved_modules).
MOVED = {
    # the plain networks
    "models.design.abstractor": "models.design.nets.abstractor",  # the name is now the abstractor stage's package
    "models.design.diffusion_unet": "models.design.nets.diffusion_unet",
    "models.design.encoder_heads": "models.design.nets.encoder_heads",
    "models.design.meta_tokens": "models.design.nets.meta_tokens",
    "models.design.unet": "models.design.nets.unet",
    # the stages' LightningModules (<Stage>Module -> <Stage>Model)
    "models.design.encoder_module": "models.design.encoder.module",
    "models.design.encoder_module.EncoderModule": "models.design.encoder.module.EncoderModel",
    "models.design.abstractor_module": "models.design.abstractor.module",
    "models.design.abstractor_module.AbstractorModule": "models.design.abstractor.module.AbstractorModel",
    "models.design.decoder_module": "models.design.decoder.module",
    "models.design.decoder_module.DecoderModule": "models.design.decoder.module.DecoderModel",
    "models.design.finetune_module": "models.design.finetune.module",
    "models.design.finetune_module.FinetuneModule": "models.design.finetune.module.FinetuneModel",
    "models.design.innovation_module": "models.design.innovation.module",
    "models.design.innovation_module.InnovationModule": "models.design.innovation.module.InnovationModel",
    # the stages' own parts
    "models.design.encoder_loss": "models.design.encoder.loss",
    "models.design.encoder_metrics": "models.design.encoder.metrics",
    "models.design.encoder_plots": "models.design.encoder.plots",
    "models.design.encoder_reading": "models.design.encoder.reading",
    "models.design.abstractor_metrics": "models.design.abstractor.metrics",
    "models.design.abstractor_plots": "models.design.abstractor.plots",
    "models.design.conditioning_fidelity": "models.design.decoder.conditioning_fidelity",
    "models.design.decoder_quality": "models.design.decoder.quality",
    "models.design.decoder_samples": "models.design.decoder.samples",
    "models.design.innovation_plots": "models.design.innovation.plots",
}
