/// A centroid gate's compiled table: centroid rows, their norms and the expert each belongs to.
///
/// One centroid per expert is the paper's rule (row e is expert e). With several per expert
/// (`RouterSpec.Gate.centroid`'s `centroidExperts`), an expert's score is the largest cosine over
/// its own centroids — nearest-prototype routing, for experts whose examples form several
/// clusters (one per instruction phrasing, say), which one mean would blur.
///
/// Immutable after init; safe to share across threads.
struct CentroidTable: Sendable {
    /// `[centroids, hidden]`.
    let centroids: Matrix
    /// The L2 norm of each centroid row.
    let norms: [Float]
    /// The expert (index into the router's experts) of each centroid row.
    let owners: [Int]
    /// Number of experts the scores cover.
    let expertCount: Int

    /// Checks shapes and owners: with `owners` empty, `[expertCount, hidden]` rows, one per expert;
    /// otherwise one owner per row, each a valid expert index, and every expert owning at least
    /// one row (an expert without a centroid could never be chosen: refused, naming it).
    init(centroids tensor: WireTensor, owners: [Int], expertCount: Int, hidden: Int) throws {
        let rows = owners.isEmpty ? expertCount : owners.count
        let m = try tensor.matrix(rows: rows, cols: hidden, field: "centroid.centroids")
        if !owners.isEmpty {
            if let (i, e) = owners.enumerated().first(where: { $0.element < 0 || $0.element >= expertCount }) {
                throw RouterError.invalid(
                    field: "centroid.centroid_experts[\(i)]",
                    reason: "expert index \(e) out of range (the router has \(expertCount) experts)")
            }
            let owned = Set(owners)
            if let missing = (0..<expertCount).first(where: { !owned.contains($0) }) {
                throw RouterError.invalid(
                    field: "centroid.centroid_experts", reason: "expert #\(missing) has no centroid")
            }
        }
        centroids = m
        norms = (0..<m.rows).map { r in m.row(r).reduce(Float(0)) { $0 + $1 * $1 }.squareRoot() }
        self.owners = owners.isEmpty ? Array(0..<expertCount) : owners
        self.expertCount = expertCount
    }

    /// Per row of `hidden` (`[rows, hidden]`, row-major), one score per expert: the cosine with
    /// the expert's centroid, or the largest over its centroids. A zero vector scores 0 (the
    /// denominator is clamped at 1e-8).
    func scores(_ hidden: UnsafePointer<Float>, rows: Int) -> [[Float]] {
        let width = centroids.cols
        let c = centroids.rows
        var dots = [Float](repeating: 0, count: rows * c)
        centroids.data.withUnsafeBufferPointer { cp in
            dots.withUnsafeMutableBufferPointer { dp in
                BLAS.gemmTransB(
                    m: rows, n: c, k: width, a: hidden, lda: width, b: cp.baseAddress!, ldb: width,
                    c: dp.baseAddress!, ldc: c)
            }
        }
        return (0..<rows).map { r in
            let h = hidden + r * width
            var norm: Float = 0
            for j in 0..<width { norm += h[j] * h[j] }
            norm = norm.squareRoot()
            var best = [Float](repeating: -.infinity, count: expertCount)
            for j in 0..<c {
                let cosine = dots[r * c + j] / max(norm * norms[j], 1e-8)
                best[owners[j]] = max(best[owners[j]], cosine)
            }
            return best
        }
    }
}
