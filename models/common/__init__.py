"""Parts shared by several systems: generative-quality metrics (FID/KID with baselines) and their feature
extractors."""
