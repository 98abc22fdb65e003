"""The design system's plain networks (`nn.Module`s): no Lightning, no data code; the stages train them."""
