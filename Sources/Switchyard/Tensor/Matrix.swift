/// A dense, row-major Float32 matrix: element (r, c) lives at `data[r * cols + c]`.
///
/// Weights follow the Hugging Face convention `[out_features, in_features]`; activations are
/// `[tokens, features]`. Value semantics (copy on write through the array).
public struct Matrix: Sendable, Equatable {
    /// Number of rows.
    public private(set) var rows: Int
    /// Number of columns.
    public private(set) var cols: Int
    /// The values, row-major (`rows × cols`).
    public var data: [Float]

    /// A zero-filled matrix.
    public init(rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "negative matrix dimension")
        self.rows = rows
        self.cols = cols
        self.data = [Float](repeating: 0, count: rows * cols)
    }

    /// Wraps `data` (count must equal rows × cols).
    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "matrix data has \(data.count) elements, expected \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// `[rows, cols]`.
    public var shape: [Int] { [rows, cols] }

    /// The value at (`row`, `col`).
    public subscript(row: Int, col: Int) -> Float {
        get { data[row * cols + col] }
        set { data[row * cols + col] = newValue }
    }

    /// A copy of one row.
    public func row(_ r: Int) -> [Float] { Array(data[(r * cols)..<((r + 1) * cols)]) }

    /// The transpose, as a new matrix.
    public func transposed() -> Matrix {
        var out = Matrix(rows: cols, cols: rows)
        for r in 0..<rows {
            for c in 0..<cols { out.data[c * rows + r] = data[r * cols + c] }
        }
        return out
    }
}
