"""Phase 3's fine-tune stage: the decoder trained toward the frozen judges' grammar (`FinetuneModel`)."""
