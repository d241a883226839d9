/// How activations meet BF16 weights in products of more than one row (batched decode, prefill).
/// One row (batch-1 decode) is bound by reading the weights, not by arithmetic, and always keeps
/// its activations Float32.
public enum BF16Activations: String, Sendable, CaseIterable {
    /// Rounded to bfloat16 (nearest even) once per product and multiplied with bfloat16 dot
    /// products (AVX-512 BF16's vdpbf16ps: twice the multiply-adds per cycle of Float32 FMAs),
    /// the sums Float32: llama.cpp's arithmetic for BF16 weights, and PyTorch's for a bfloat16
    /// model. On CPUs without AVX-512 BF16 it changes nothing (the widening kernels run). The
    /// precision it costs: `Sources/CKernels/bf16dot.c`.
    case bf16
    /// Kept Float32, each weight widened exactly in registers: the parity path (transformers in
    /// float32 over the same weights).
    case f32
}
