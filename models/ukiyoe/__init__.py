"""ukiyoe: a GAN with an integrated neural cellular automaton for ukiyo-e-like prints.

- `nets/`: the plain networks (`nn.Module`s; no Lightning, no data code): StyleGAN-style synthesis, the
  NCA, the Gumbel palette, the generator made of the three, the discriminator and the critic.
- `gan_module.py`: `UkiyoeGANModel`, the GAN's LightningModule, with its parts beside it (`augment`,
  `balance`, `palette_usage`, `quality`, `sample_grid`).
- `grow_module.py`: `GrowModel`, the standalone NCA grow experiment (its sample pool: `grow_pool`).
- `schema.py`: what the model and the data share (the pigments).
"""

# Moved or renamed code; old checkpoints' stored configs name it (see training.toolkit.moved_modules).
MOVED = {
    # the plain networks
    "models.ukiyoe.critic": "models.ukiyoe.nets.critic",
    "models.ukiyoe.discriminator": "models.ukiyoe.nets.discriminator",
    "models.ukiyoe.generator": "models.ukiyoe.nets.generator",
    "models.ukiyoe.nca": "models.ukiyoe.nets.nca",
    "models.ukiyoe.palette": "models.ukiyoe.nets.palette",
    "models.ukiyoe.stylegan": "models.ukiyoe.nets.stylegan",
    # the LightningModules (<Name> -> <Name>Model)
    "models.ukiyoe.gan_module.UkiyoeGAN": "models.ukiyoe.gan_module.UkiyoeGANModel",
    "models.ukiyoe.grow_module.GrowModule": "models.ukiyoe.grow_module.GrowModel",
}
