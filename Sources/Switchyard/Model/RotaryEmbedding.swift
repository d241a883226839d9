import Foundation

/// Rotary position embeddings as in Hugging Face's Llama (`rotate_half` form: dimension i is
/// paired with i + headDim/2, not interleaved).
///
/// Matches transformers' float32 arithmetic: `inv_freq[i] = 1 / theta^(2i/headDim)` and
/// `angle = Float(position) * inv_freq[i]`, both in Float32.
public struct RotaryEmbedding: Sendable {
    /// Features per head the rotation covers (even; pairs are `i` and `i + headDim/2`).
    public let headDim: Int
    /// `headDim/2` angular frequencies in radians per position, after `scaling`.
    public let inverseFrequencies: [Float]

    /// Frequencies `1 / theta^(2i/headDim)` for i in `0..<headDim/2`, then adjusted by `scaling`.
    public init(headDim: Int, theta: Float, scaling: RopeScaling = .none) {
        self.headDim = headDim
        inverseFrequencies = scaling.apply(
            (0..<(headDim / 2)).map { i in
                1 / Foundation.pow(theta, Float(2 * i) / Float(headDim))
            })
    }

    /// Fills `cos`/`sin` `[positions.count × headDim/2]`.
    func tables(positions: [Int], cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let half = headDim / 2
        inverseFrequencies.withUnsafeBufferPointer { f in
            for (r, p) in positions.enumerated() {
                for i in 0..<half {
                    let angle = Float(p) * f[i]
                    cos[r * half + i] = Foundation.cos(angle)
                    sin[r * half + i] = Foundation.sin(angle)
                }
            }
        }
    }

    /// Rotates `heads` consecutive heads of each row in place; rows are `stride` floats apart
    /// (`Ops.rotate`).
    @inline(__always)
    func apply(
        _ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, stride: Int,
        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
    ) {
        Ops.rotate(x, rows: rows, heads: heads, stride: stride, headDim: headDim, cos: cos, sin: sin)
    }
}
