"""Phase 2, the abstractor stage: F_Tensor -> V_Meta + V_Grammar (`AbstractorModel` trains `nets.abstractor.Abstractor`)."""
