import CKernels

/// Fork-join parallelism on the kernel thread pool (the same pool the matrix products use).
public enum Parallel {
    /// Runs `body(i)` for every i in `0..<count`, in parallel, and returns when all are done.
    /// Matrix products called from inside `body` run single-threaded (jobs do not nest), so
    /// split work here only when the parts are independent and comparable in size.
    /// `forEach` when `work` (multiply-adds in all) is worth a fork-join, else a plain loop in
    /// index order. Each fork-join wakes the pool (microseconds); at batch-1 decode a rank-16
    /// expert on one projection is ~10-40K multiply-adds, less than the wake-up costs, and a
    /// routed step does hundreds of them. Results are identical either way when the bodies
    /// write disjoint memory.
    public static let minimumForkWork = 1 << 17

    public static func forEach(_ count: Int, work: Int, _ body: (Int) -> Void) {
        if work < minimumForkWork {
            for i in 0..<count { body(i) }
        } else {
            forEach(count, body)
        }
    }

    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 1 else {
            if count == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var closure = escapable
            withUnsafeMutablePointer(to: &closure) { pointer in
                sy_parallel_for(Int32(count), { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(index))
                }, pointer)
            }
        }
    }
}
