import CKernels
import Foundation

/// A weight matrix `[rows × cols]` kept in its storage type — one of llama.cpp's block formats
/// (Q8_0, Q4_0, Q4_1) or half precision (F16, BF16) — and multiplied without widening it in
/// memory: decode reads 2–8× fewer weight bytes than Float32.
///
/// One-row products of the block formats quantise the activations to int16 per block of 32 and
/// multiply as integers; small batches (2…16 rows, batched decode) of the block formats do the
/// same with 8-bit dot products on CPUs with AVX-512 VNNI (the int16 values split into two bytes,
/// `batchedProductsUseVNNI`); elsewhere, and for half types, small batches widen each weight
/// block in registers once for all rows, except BF16 weights whose activations are rounded to
/// bfloat16 (`roundsActivationsToBF16`, on CPUs with AVX-512 BF16), which take bfloat16 dot
/// products for batches and prefill alike; prefill widens chunks of rows to Float32 tiles for
/// sgemm (`sy_qgemm_nt`). A Q8_0 matrix rewritten from Q5_1 or Q5_K also holds a Float32 offset
/// per block (`hasBlockOffsets`), which the integer kernels add with the activations' block sums
/// (the other paths add it after, from exact sums). On CPUs with AVX-512 VNNI, Q8_0 with an even
/// number of rows is stored in row pairs (`keepsRowPairs`): the same bytes rearranged for the
/// kernels, invisible outside (`withBytes`, `row`, `dequantized` give ggml's Q8_0). The weights are
/// immutable; the bytes are owned here (64-byte aligned) and freed in `deinit`. Thread-safe to read.
public final class QuantizedMatrix: @unchecked Sendable {
    /// The block format of the stored weights.
    public let type: GGMLType
    /// Number of rows (output features).
    public let rows: Int
    /// Number of columns (input features; a multiple of 32).
    public let cols: Int
    /// Bytes of one row (`cols / blockElements` blocks).
    public let rowBytes: Int
    /// The blocks, `rows × rowBytes` bytes from `weightMemory` (freed with the matrix).
    private let storage: UnsafeMutableRawPointer
    /// One Float32 per 32-value block (`rows × cols/32`, row-major) added to every value of the
    /// block, or nil: Q8_0 blocks rewritten from a type with a minimum (Q5_1, Q5_K) hold
    /// w = d·q + offset. Products add each block's input sum times it (`sy_qgemm_output.offsets`).
    private let offsets: UnsafeMutablePointer<Float>?
    /// The layout of `storage` as the kernels name it: `type`'s, or `SY_Q8_0_PAIRS` for Q8_0 kept
    /// in row pairs (`keepsRowPairs`).
    private let kernelType: Int32

    /// Whether batched products (2…16 rows) of the integer block formats run on 8-bit dot
    /// products (AVX-512 VNNI) on this CPU, rather than on weights widened to Float32.
    public static var batchedProductsUseVNNI: Bool { sy_kernels_have_vnni() != 0 }

    /// Whether this CPU has AVX-512 BF16, which `roundsActivationsToBF16` needs to change anything.
    public static var bf16DotProductsAvailable: Bool { sy_kernels_have_avx512bf16() != 0 }

    /// Whether products of more than one row round their input to bfloat16 and multiply with
    /// bfloat16 dot products (`BF16Activations.bf16`): BF16 weights only, on CPUs with AVX-512
    /// BF16; otherwise ignored. Set through `LlamaModel.bf16Activations`, before the matrix is
    /// multiplied from several threads.
    public internal(set) var roundsActivationsToBF16 = false

    /// Whether a matrix of `type` with `rows` rows (`hasOffsets`: block offsets) is kept in row pairs
    /// (`SY_Q8_0_PAIRS`, `q8pairs.c`): on CPUs with AVX-512 VNNI, an even number of rows and no
    /// block offsets. Two rows' blocks side by side, their bytes already flipped to unsigned and
    /// interleaved by groups of 4, so that the 8-bit kernels read them straight from memory instead
    /// of unpacking every block at every step: the same size and the same products' values (bit for
    /// bit), batched decode ~25% and batch 1 faster per thread. `withBytes`, `row` and
    /// `dequantized` still give ggml's Q8_0.
    static func keepsRowPairs(_ type: GGMLType, rows: Int, hasOffsets: Bool) -> Bool {
        type == .q8_0 && rows % 2 == 0 && !hasOffsets && batchedProductsUseVNNI
    }

    /// Whether this matrix is Q8_0 kept in row pairs (`keepsRowPairs`).
    public var keptInRowPairs: Bool { kernelType == Int32(SY_Q8_0_PAIRS) }

    /// The kernels' name for the layout of `rows` rows of `type` at `storage`: `type`'s, or
    /// `SY_Q8_0_PAIRS` after rewriting them in place as row pairs where `keepsRowPairs`.
    private static func kernelLayout(
        _ type: GGMLType, _ storage: UnsafeMutableRawPointer, rows: Int, cols: Int, rowBytes: Int, hasOffsets: Bool
    ) -> Int32 {
        guard keepsRowPairs(type, rows: rows, hasOffsets: hasOffsets) else { return Int32(type.rawValue) }
        withUnsafeTemporaryAllocation(byteCount: 2 * rowBytes, alignment: 64) { pair in
            for h in 0..<rows / 2 {
                let at = storage + 2 * h * rowBytes
                pair.baseAddress!.copyMemory(from: at, byteCount: 2 * rowBytes)
                sy_q8_0_pack_pair(pair.baseAddress!, pair.baseAddress! + rowBytes, Int32(cols), at)
            }
        }
        return Int32(SY_Q8_0_PAIRS)
    }

    /// The types these kernels multiply natively.
    public static let nativeTypes: Set<GGMLType> = [.q8_0, .q4_0, .q4_1, .f16, .bf16]

    /// The native types multiplied as integers (llama.cpp's block formats; the rest are widened
    /// to Float32 in registers).
    public static let integerTypes: Set<GGMLType> = [.q8_0, .q4_0, .q4_1]

    /// Whether a `[rows × cols]` matrix of `type` can be kept as it is stored: a native type and
    /// whole blocks of 32 along each row (otherwise it is widened to Float32 at load).
    public static func canKeep(_ type: GGMLType, cols: Int) -> Bool {
        nativeTypes.contains(type) && cols % 32 == 0
    }

    /// Copies `rows` rows of `type` blocks from `bytes`; `rowOrder[i]` (if given) is the source
    /// row of row i (used to undo llama.cpp's q/k permutation without widening).
    public init(type: GGMLType, rows: Int, cols: Int, bytes: UnsafeRawBufferPointer, rowOrder: [Int]? = nil) {
        precondition(Self.canKeep(type, cols: cols), "\(type) [\(rows)×\(cols)] has no native kernel")
        self.type = type
        self.rows = rows
        self.cols = cols
        rowBytes = cols / type.blockElements * type.blockBytes
        precondition(bytes.count == rows * rowBytes, "expected \(rows * rowBytes) bytes, found \(bytes.count)")
        storage = Self.weightMemory(rows * rowBytes)
        offsets = nil
        for r in 0..<rows {
            let from = rowOrder?[r] ?? r
            (storage + r * rowBytes).copyMemory(from: bytes.baseAddress! + from * rowBytes, byteCount: rowBytes)
        }
        kernelType = Self.kernelLayout(type, storage, rows: rows, cols: cols, rowBytes: rowBytes, hasOffsets: false)
    }

    /// How a loader keeps `rows` rows of `type` from `bytes` (`rowOrder` as in
    /// `init(type:rows:cols:bytes:rowOrder:)`), or nil when this type is not kept (the loader
    /// widens it, or requantises it to Q8_0): a native type as stored, except F16 whose every
    /// value is exactly a bfloat16, kept as BF16 on CPUs with AVX-512 BF16 (`init(bf16FromF16:…)`:
    /// the same numbers, and batches can take bfloat16 dot products); a type `repackedType` names
    /// a rewrite for, rewritten (`init?(repacking:…)`).
    public static func loaded(
        type: GGMLType, rows: Int, cols: Int, bytes: UnsafeRawBufferPointer, rowOrder: [Int]? = nil
    ) -> QuantizedMatrix? {
        if repackedType(type) != nil, cols % type.blockElements == 0 {
            return QuantizedMatrix(repacking: type, rows: rows, cols: cols, bytes: bytes, rowOrder: rowOrder)
        }
        guard canKeep(type, cols: cols) else { return nil }
        if type == .f16, bf16DotProductsAvailable,
            let q = QuantizedMatrix(bf16FromF16: bytes, rows: rows, cols: cols, rowOrder: rowOrder)
        {
            return q
        }
        return QuantizedMatrix(type: type, rows: rows, cols: cols, bytes: bytes, rowOrder: rowOrder)
    }

    /// The native type that blocks of `type` (which has no kernel) are rewritten into at load,
    /// or nil: Q5_0 → Q8_0, exactly (the same scale, q − 16 as a signed byte: 8.5 bits a value
    /// instead of 5.5, the same numbers); Q4_K → Q4_1, each 32-value sub-block a Q4_1 block with
    /// the same nibbles and its scale d·sc and minimum −dmin·m rounded to half (≤ 2^-11 relative:
    /// ~200× closer than requantising to Q8_0; 5 bits a value instead of 4.5); Q5_1 and Q5_K →
    /// Q8_0 with a Float32 offset per block (w = d·(q + c) + r: Q5_1 exactly, Q5_K with d·sc
    /// rounded to half; 9.5 bits a value instead of 6 and 5.5); IQ4_NL → Q8_0 exactly (its
    /// table's values as signed bytes) and IQ4_XS → Q8_0 with d·(ls − 32) rounded to half; Q6_K →
    /// F16, each value rounded to half (≤ 2^-11 relative; its 16-value sub-blocks fit no 32-value
    /// block: requantised to Q8_0 instead, SmolLM2's Q4_K_M and Q5_K_M logits were 3.3e-4 and
    /// 1.7e-3 from the dequantised file (NMSE), as F16 5.7e-7 and 1.4e-6, for 16 bits a value
    /// instead of 8.5 and ~5% of batch-1 decode on those files; a GGUF file that is mostly Q6_K
    /// is requantised instead, `GGUFModel.holdsMostlyQ6_K`).
    public static func repackedType(_ type: GGMLType) -> GGMLType? {
        switch type {
        case .q5_0, .q5_1, .q5_K, .iq4_NL, .iq4_XS: return .q8_0
        case .q4_K: return .q4_1
        case .q6_K: return .f16
        default: return nil
        }
    }

    /// `rows` rows of `type` blocks from `bytes` rewritten as `repackedType(type)` blocks, or nil
    /// when the type has none, or a scale (Q6_K: a value) does not survive the rounding to half or
    /// is not finite (`sy_q4_K_to_q4_1`, `sy_q5_1_to_q8_0`, …, `halves(ofQ6_K:…)`; the loader then
    /// requantises the tensor to Q8_0). Converted straight into this matrix's storage; `rowOrder`
    /// as in `init(type:rows:cols:bytes:rowOrder:)`.
    public init?(repacking type: GGMLType, rows: Int, cols: Int, bytes: UnsafeRawBufferPointer, rowOrder: [Int]? = nil)
    {
        guard let target = Self.repackedType(type), cols % type.blockElements == 0 else { return nil }
        let sourceRowBytes = cols / type.blockElements * type.blockBytes
        precondition(
            bytes.count == rows * sourceRowBytes, "expected \(rows * sourceRowBytes) bytes, found \(bytes.count)")
        let rowBytes = cols / target.blockElements * target.blockBytes, nb = cols / 32
        let storage = Self.weightMemory(rows * rowBytes)
        let offsets: UnsafeMutablePointer<Float>? =
            type == .q5_1 || type == .q5_K ? .allocate(capacity: max(1, rows * nb)) : nil
        let blocks = cols / type.blockElements
        for r in 0..<rows {
            let from = bytes.baseAddress! + (rowOrder?[r] ?? r) * sourceRowBytes, to = storage + r * rowBytes
            let failed: Bool
            switch type {
            case .q5_0: sy_q5_0_to_q8_0(from, blocks, to); failed = false
            case .iq4_NL: sy_iq4_nl_to_q8_0(from, blocks, to); failed = false
            case .iq4_XS: failed = sy_iq4_xs_to_q8_0(from, blocks, to) >= 0
            case .q5_1: failed = sy_q5_1_to_q8_0(from, blocks, to, offsets! + r * nb) >= 0
            case .q5_K: failed = sy_q5_K_to_q8_0(from, blocks, to, offsets! + r * nb) >= 0
            case .q6_K: failed = !Self.halves(ofQ6_K: from, count: cols, into: to.assumingMemoryBound(to: UInt16.self))
            default: failed = sy_q4_K_to_q4_1(from, blocks, to) >= 0
            }
            if failed {
                sy_weight_free(storage)
                offsets?.deallocate()
                return nil
            }
        }
        self.type = target
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        self.storage = storage
        self.offsets = offsets
        kernelType = Self.kernelLayout(
            target, storage, rows: rows, cols: cols, rowBytes: rowBytes, hasOffsets: offsets != nil)
    }

    /// `count` values of Q6_K blocks at `q6K` as halves at `out`: ggml's Float32 dequantisation
    /// (`GGMLDequantize.row`) rounded to half, nearest (≤ 2^-11 relative; ≤ 2^-25 absolute below the
    /// normal halves). False, with `out` partly written, at the first value that is not finite or
    /// rounds past the half range.
    private static func halves(ofQ6_K q6K: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<UInt16>)
        -> Bool
    {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { values in
            GGMLDequantize.row(.q6_K, q6K, into: values.baseAddress!, count: count)
            for (i, v) in values.enumerated() {
                let h = Float16(v)
                guard h.isFinite else { return false }
                out[i] = h.bitPattern
            }
            return true
        }
    }

    /// `rows` rows of F16 values from `f16` kept as BF16, when every one of them is exactly a
    /// bfloat16 (an F16 file made from a checkpoint trained in bfloat16: all its values are), else
    /// nil: the same numbers, so that batches can take bfloat16 dot products
    /// (`roundsActivationsToBF16`). Converted straight into this matrix's storage (no second copy);
    /// `rowOrder` as in `init(type:rows:cols:bytes:rowOrder:)`.
    public init?(bf16FromF16 f16: UnsafeRawBufferPointer, rows: Int, cols: Int, rowOrder: [Int]? = nil) {
        precondition(Self.canKeep(.bf16, cols: cols), "BF16 [\(rows)×\(cols)] has no native kernel")
        precondition(f16.count == rows * cols * 2, "expected \(rows * cols * 2) bytes, found \(f16.count)")
        let rowBytes = cols * 2
        let storage = Self.weightMemory(rows * rowBytes)
        for r in 0..<rows {
            let from = f16.baseAddress! + (rowOrder?[r] ?? r) * rowBytes
            let to = (storage + r * rowBytes).assumingMemoryBound(to: UInt16.self)
            guard sy_f16_to_bf16_exact(from, cols, to) < 0 else {
                sy_weight_free(storage)
                return nil
            }
        }
        type = .bf16
        kernelType = Int32(GGMLType.bf16.rawValue)
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        self.storage = storage
        offsets = nil
    }

    deinit {
        sy_weight_free(storage)
        offsets?.deallocate()
    }

    /// `bytes` of memory for a matrix's blocks: `sy_weight_alloc` (64-byte aligned, on transparent
    /// huge pages where the system allows them, since decode reads every weight each step). Traps
    /// when there is no memory, as `UnsafeMutableRawPointer.allocate` does.
    private static func weightMemory(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard let memory = sy_weight_alloc(max(1, bytes)) else {
            fatalError("QuantizedMatrix: no memory for \(bytes) bytes of weights")
        }
        return memory
    }

    /// Whether this matrix carries a Float32 offset per block (Q8_0 rewritten from Q5_1 or Q5_K).
    public var hasBlockOffsets: Bool { offsets != nil }

    /// Adds the offsets of rows `first..<first + count` to their widened values at `out`.
    private func addOffsets(rows first: Int, count: Int, to out: UnsafeMutablePointer<Float>) {
        guard let offsets else { return }
        let nb = cols / 32
        for r in 0..<count {
            for b in 0..<nb {
                let o = offsets[(first + r) * nb + b], p = out + r * cols + 32 * b
                for j in 0..<32 { p[j] += o }
            }
        }
    }

    /// The blocks in `type`'s layout (ggml's), `rows · rowBytes` bytes, for the duration of `body`:
    /// the stored bytes, or a copy of row pairs put back in Q8_0 rows.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard kernelType == Int32(SY_Q8_0_PAIRS) else {
            return try body(UnsafeRawBufferPointer(start: storage, count: rows * rowBytes))
        }
        return try withUnsafeTemporaryAllocation(byteCount: max(1, rows * rowBytes), alignment: 64) { copy in
            for r in 0..<rows {
                sy_q8_0_pairs_row(storage, rowBytes, Int32(cols), Int32(r), copy.baseAddress! + r * rowBytes)
            }
            return try body(UnsafeRawBufferPointer(start: copy.baseAddress!, count: rows * rowBytes))
        }
    }

    /// `matrix` quantised to Q8_0 (ggml's reference rounding: per block of 32, d = max|x| / 127);
    /// used for weights stored in a type without a native kernel (the K-quants), which Q8_0
    /// holds with ~0.4% error per value at 8.5 bits instead of Float32's 32. `cols` must be a
    /// multiple of 32.
    public static func q8_0(_ matrix: Matrix) -> QuantizedMatrix {
        precondition(matrix.cols % 32 == 0, "Q8_0 needs whole blocks of 32 along a row, found \(matrix.cols) columns")
        let rowBytes = matrix.cols / 32 * GGMLType.q8_0.blockBytes
        var bytes = [UInt8](repeating: 0, count: matrix.rows * rowBytes)
        matrix.data.withUnsafeBufferPointer { x in
            bytes.withUnsafeMutableBytes {
                sy_quantize_rows_q8_0(x.baseAddress!, Int32(matrix.rows), Int32(matrix.cols), $0.baseAddress!)
            }
        }
        return bytes.withUnsafeBytes { QuantizedMatrix(type: .q8_0, rows: matrix.rows, cols: matrix.cols, bytes: $0) }
    }

    /// The first NaN or infinite weight, as a row-major flat index and its widened value, or nil.
    /// Integer blocks can only hold one through a non-finite scale or offset.
    func firstNonFinite() -> (element: Int, value: Float)? {
        var element = Int(
            sy_weights_first_nonfinite(kernelType, storage, rowBytes, Int32(cols), Int32(rows)))
        if element < 0, let offsets, let b = (0..<rows * (cols / 32)).first(where: { !offsets[$0].isFinite }) {
            element = b * 32
        }
        guard element >= 0 else { return nil }
        var row = [Float](repeating: 0, count: cols)
        row.withUnsafeMutableBufferPointer { self.row(element / cols, into: $0.baseAddress!) }
        return (element, row[element % cols])
    }

    /// Bytes held.
    public var byteCount: Int { rows * rowBytes + (offsets == nil ? 0 : rows * (cols / 32) * 4) }

    /// The matrix widened to Float32 (the parity path, merging).
    public func dequantized() -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        // The kernels know every type `init` accepts (`nativeTypes`): the status is always 0.
        _ = m.data.withUnsafeMutableBufferPointer {
            sy_dequantize_rows(kernelType, storage, rowBytes, Int32(cols), 0, Int32(rows), $0.baseAddress!)
        }
        m.data.withUnsafeMutableBufferPointer { addOffsets(rows: 0, count: rows, to: $0.baseAddress!) }
        return m
    }

    /// One row widened to Float32 into `out` (`cols` floats): embedding lookups.
    public func row(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        _ = sy_dequantize_rows(kernelType, storage, rowBytes, Int32(cols), Int32(r), Int32(r + 1), out)
        addOffsets(rows: r, count: 1, to: out)
    }

    /// `output[m × rows] = input[m × cols] · Wᵀ` (row-major, contiguous).
    public func multiply(_ input: UnsafePointer<Float>, rows m: Int, into output: UnsafeMutablePointer<Float>) {
        Self.fused([self], input, rows: m, into: [output])
    }

    /// Whether `fused` can multiply these matrices in one call: 1...4 of them, one type (Q8_0 in row
    /// pairs or not, `keepsRowPairs`), one width.
    public static func canFuse(_ matrices: [QuantizedMatrix]) -> Bool {
        guard let first = matrices.first, matrices.count <= Int(SY_QGEMM_MAX_PARTS) else { return false }
        return matrices.allSatisfy { $0.type == first.type && $0.cols == first.cols }
    }

    /// `outputs[i][m × matrices[i].rows] = input[m × cols] · matrices[i]ᵀ` for matrices that read the
    /// same input (a layer's q, k and v): the input is quantised once and all their rows are split
    /// over the pool as one job (`sy_qgemm_nt_fused`; the input is rounded to bfloat16 when every
    /// matrix `roundsActivationsToBF16`). Requires `canFuse(matrices)` (traps otherwise) and one
    /// output per matrix.
    public static func fused(
        _ matrices: [QuantizedMatrix], _ input: UnsafePointer<Float>, rows m: Int,
        into outputs: [UnsafeMutablePointer<Float>]
    ) {
        precondition(canFuse(matrices) && outputs.count == matrices.count, "fused: matrices that cannot share a call")
        let cols = matrices[0].cols
        var parts = zip(matrices, outputs).map { w, out in
            sy_qgemm_output(
                type: w.kernelType, N: Int32(w.rows), W: UnsafeRawPointer(w.storage), row_bytes: w.rowBytes,
                C: out, ldc: Int32(w.rows), offsets: w.offsets.map { UnsafePointer($0) })
        }
        withUnsafeTemporaryAllocation(of: sy_block_q16.self, capacity: max(1, cols / 32)) { scratch in
            let rc = sy_qgemm_nt_fused(
                Int32(m), Int32(cols), input, Int32(cols), &parts, Int32(parts.count), scratch.baseAddress!,
                matrices.allSatisfy(\.roundsActivationsToBF16) ? 1 : 0)
            precondition(
                rc == 0, "sy_qgemm_nt_fused refused \(parts.count) \(matrices[0].type) matrices of width \(cols)")
        }
    }
}
