"""Phase 1, the encoder stage: image -> F_Tensor (`EncoderModel` trains `nets.unet.DesignUNet`)."""
