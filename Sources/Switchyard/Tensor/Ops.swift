import CKernels
import Foundation

/// Elementwise kernels on raw row-major buffers, used by the decoder's hot loop.
/// Each works in Float32 in the same order of operations as the PyTorch reference, unless its
/// comment says otherwise (the vectorised exp of `siluMultiply`, `logSoftmax` and `sumExp`).
public enum Ops {
    /// RMSNorm of each row: `x / sqrt(mean(x²) + eps) * weight` (Llama's `LlamaRMSNorm`), by
    /// `sy_rms_norm`: on AVX2 the sum of squares is accumulated in 32 lanes, so its additions are
    /// not in PyTorch's order (float precision either way).
    @inline(__always)
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>,
        eps: Float, into out: UnsafeMutablePointer<Float>
    ) {
        sy_rms_norm(x, Int32(rows), Int32(width), weight, eps, out, 0)
    }

    /// `gate[i] = silu(gate[i]) * up[i]` in place (SwiGLU), by `sy_silu_multiply`: on AVX2 with a
    /// polynomial exp (relative error ~2e-7), so not in PyTorch's exact order of operations.
    @inline(__always)
    public static func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        sy_silu_multiply(gate, up, Int32(count), 0)
    }

    /// `log softmax(x)[index]` for finite `x` (`sy_log_softmax_at`: vectorised, the terms summed
    /// in double). `index` must be within `x` (traps otherwise).
    public static func logSoftmax(_ x: UnsafeBufferPointer<Float>, at index: Int) -> Float {
        precondition(x.indices.contains(index), "logSoftmax: index \(index) outside \(x.count) values")
        return sy_log_softmax_at(x.baseAddress!, Int32(x.count), Int32(index), 0)
    }

    /// The largest of `x` (−∞ when empty; `sy_max`, vectorised).
    public static func max(_ x: UnsafeBufferPointer<Float>) -> Float {
        x.isEmpty ? -.infinity : sy_max(x.baseAddress!, Int32(x.count), 0)
    }

    /// The index of the largest of `x`, the first on ties (0 when empty). NaNs never win, but a
    /// NaN first value is returned (0), as nothing compares greater than it: the rule of
    /// `for i where x[i] > x[best]`, vectorised by `sy_argmax`.
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int {
        x.isEmpty ? 0 : Int(sy_argmax(x.baseAddress!, Int32(x.count), 0))
    }

    /// `Σ exp(x[i] − shift)` in double for finite `x[i] ≤ shift` (`sy_sum_exp`): the softmax
    /// normaliser with `shift = max x`.
    public static func sumExp(_ x: UnsafeBufferPointer<Float>, shift: Float) -> Double {
        x.isEmpty ? 0 : sy_sum_exp(x.baseAddress!, Int32(x.count), shift, 0)
    }

    /// Rotary embeddings in place, Hugging Face's rotate_half form (`sy_rope_apply`): in each of
    /// `rows` rows (`stride` floats apart), `heads` heads of `headDim` floats; pair (i, i + headDim/2)
    /// is rotated by the row's `cos`/`sin` `[rows × headDim/2]`, each product rounded before the sum
    /// as PyTorch's float32.
    @inline(__always)
    public static func rotate(
        _ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, stride: Int, headDim: Int,
        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
    ) {
        sy_rope_apply(x, Int32(rows), Int32(heads), Int32(stride), Int32(headDim), cos, sin, 0)
    }

    /// `x[i] += y[i]`, by OpenBLAS's saxpy with α = 1 (vectorised; the Swift loop is built for
    /// baseline x86-64): fma(1, y, x) rounds exactly as x + y does.
    @inline(__always)
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        BLAS.axpy(1, y, x, count: count)
    }

    /// In-place softmax over `x[0..<count]` (max-subtracted).
    @inline(__always)
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        var m = -Float.infinity
        for i in 0..<count where x[i] > m { m = x[i] }
        var sum: Float = 0
        for i in 0..<count {
            let e = Foundation.exp(x[i] - m)
            x[i] = e
            sum += e
        }
        let inv = 1 / sum
        for i in 0..<count { x[i] *= inv }
    }
}
