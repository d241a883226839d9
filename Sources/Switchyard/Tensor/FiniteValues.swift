import CKernels

/// Finds NaN and infinite values in weights (a corrupt or diverged checkpoint), through the C
/// kernels so that checking a whole model at load costs a few milliseconds.
enum FiniteValues {
    /// Index of the first NaN or infinite element, or nil when all are finite.
    static func firstNonFinite(_ values: [Float]) -> Int? {
        let i = values.withUnsafeBufferPointer { sy_floats_first_nonfinite($0.baseAddress, $0.count) }
        return i < 0 ? nil : Int(i)
    }
}
