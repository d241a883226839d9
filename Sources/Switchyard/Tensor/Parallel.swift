import CKernels

/// Fork-join parallelism on the kernel thread pool (the same pool the matrix products use).
public enum Parallel {
    /// The least total work (multiply-adds) worth a fork-join: each one wakes the pool
    /// (microseconds), while at batch-1 decode a rank-16 expert on one projection is ~10-40K
    /// multiply-adds, and a routed step does hundreds of them.
    public static let minimumForkWork = 1 << 17

    /// `forEach` when `work` (multiply-adds in all) reaches `minimumForkWork`, else a plain loop
    /// in index order. Results are identical either way when the bodies write disjoint memory.
    public static func forEach(_ count: Int, work: Int, _ body: (Int) -> Void) {
        if work < minimumForkWork {
            for i in 0..<count { body(i) }
        } else {
            forEach(count, body)
        }
    }

    /// Runs `body(i)` for every i in `0..<count`, in parallel, and returns when all are done.
    /// Matrix products called from inside `body` run single-threaded (jobs do not nest), so
    /// split work here only when the parts are independent and comparable in size.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 1 else {
            if count == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var closure = escapable
            withUnsafeMutablePointer(to: &closure) { pointer in
                sy_parallel_for(
                    Int32(count),
                    { context, index in
                        context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(index))
                    }, pointer)
            }
        }
    }
}
