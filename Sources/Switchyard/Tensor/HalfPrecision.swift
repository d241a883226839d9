/// Conversions between Float32 and the 16-bit formats found in checkpoints.
///
/// - bf16 is the top half of an IEEE float32: widening is a shift; narrowing rounds to nearest
///   even (as PyTorch's `.to(torch.bfloat16)` does), keeping NaN a NaN.
/// - f16 is IEEE binary16 (Swift's `Float16`).
enum HalfPrecision {
    @inline(__always)
    static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    @inline(__always)
    static func floatToBF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
        let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    @inline(__always)
    static func f16ToFloat(_ bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    @inline(__always)
    static func floatToF16(_ value: Float) -> UInt16 {
        Float16(value).bitPattern
    }
}
