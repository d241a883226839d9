/// The load-time rule for base-model and adapter weights: NaN and infinity are refused, naming the
/// file, the tensor and the first bad element.
enum FiniteWeights {
    /// `values`, or an error when one of them is NaN or infinite.
    static func require(_ values: [Float], path: String, tensor: String) throws -> [Float] {
        if let i = FiniteValues.firstNonFinite(values) {
            throw SwitchyardError.nonFinite(path: path, tensor: tensor, element: i, value: values[i])
        }
        return values
    }

    /// `matrix`, or an error when one of its weights is NaN or infinite.
    static func require(_ matrix: Matrix, path: String, tensor: String) throws -> Matrix {
        _ = try require(matrix.data, path: path, tensor: tensor)
        return matrix
    }

    /// `weights`, or an error when one of them (a block scale, offset or half value) is NaN or
    /// infinite. `rowOrder[i]`, when given, is the file's row of row i (the q/k un-permutation), so
    /// that the element is named in the file's layout.
    static func require(_ weights: QuantizedMatrix, path: String, tensor: String, rowOrder: [Int]? = nil) throws
        -> QuantizedMatrix
    {
        if let bad = weights.firstNonFinite() {
            let cols = weights.cols, row = rowOrder?[bad.element / cols] ?? bad.element / cols
            throw SwitchyardError.nonFinite(
                path: path, tensor: tensor, element: row * cols + bad.element % cols, value: bad.value)
        }
        return weights
    }
}
