"""The ukiyoe system's plain networks (`nn.Module`s; no Lightning, no data code): `stylegan` (synthesis),
`nca` (the integrated NCA), `palette` (Gumbel palette), `generator` (the three in a row), `discriminator`
and `critic`."""
