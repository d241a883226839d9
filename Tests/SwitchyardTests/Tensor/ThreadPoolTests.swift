import CBLAS
import CKernels
import Foundation
import Synchronization
import Testing

/// `sy_parallel_for` under preemption: every task of a job runs exactly once, and none runs after
/// the call returned. The old pool let a worker that was preempted between two claims take an index
/// of the next job against the old job's bookkeeping, so a job could return with a task still
/// running (a server replica crashed in CI on it); about 1 in 10⁵–10⁶ jobs failed under load.
@Suite(.serialized) struct ThreadPoolTests {
    /// One job's record: slot 0 is the job number, slot 1 the task count, then a hit counter per task.
    private static let slots = 2 + 40

    /// OpenBLAS runs inside the pool's tasks (prefill tiles): setting up the pool turns OpenBLAS's
    /// own threads off, whatever ran before. A GGUF model whose products never took the Float32
    /// path left OpenBLAS multi-threaded, and its prefill ran 3.7× slower from the two pools
    /// fighting over the cores.
    @Test func settingUpThePoolMakesOpenBLASSingleThreaded() {
        let saved = sy_threads()
        openblas_set_num_threads(2)
        sy_set_threads(saved)
        #expect(openblas_get_num_threads() == 1)
    }

    /// The bench's roofline: a positive, finite rate from a short measurement on every pool thread,
    /// and a job that returns (the loop is sized from the time asked for, not fixed).
    @Test func multiplyAddPeakIsMeasured() {
        let start = Date()
        let peak = sy_multiply_add_peak(0.05)
        #expect(peak.isFinite && peak > 1e6)
        #expect(Date().timeIntervalSince(start) < 30)
    }

    @Test func everyTaskRunsOnceAndNoneOutlivesItsJob() {
        let jobs = Int(ProcessInfo.processInfo.environment["SWITCHYARD_POOL_JOBS"] ?? "") ?? 600_000
        let saved = sy_threads()
        sy_set_threads(max(2, saved))
        defer { sy_set_threads(saved) }
        // Threads that compete for the cores, so the pool's workers get preempted mid-job.
        let stop = StopFlag()
        for _ in 0..<2 {
            Thread { while !stop.value.load(ordering: .relaxed) { for _ in 0..<1000 { _ = sy_threads() } } }.start()
        }
        defer { stop.value.store(true, ordering: .relaxed) }

        let record = UnsafeMutablePointer<Int32>.allocate(capacity: Self.slots)
        defer { record.deallocate() }
        var failures: [String] = []
        for job in 0..<jobs {
            let count = 2 + job % 38
            record[0] = Int32(job % 1_000_000)
            record[1] = Int32(count)
            for i in 0..<count { record[2 + i] = 0 }
            sy_parallel_for(
                Int32(count),
                { context, index in
                    let r = context!.assumingMemoryBound(to: Int32.self)
                    guard index >= 0, index < r[1] else { r[0] = -1; return }
                    for _ in 0..<(Int(index) % 3) * 20 { _ = sy_threads() }
                    r[2 + Int(index)] &+= 1
                }, record)
            let hits = (0..<count).map { record[2 + $0] }
            if record[0] != Int32(job % 1_000_000) || hits.contains(where: { $0 != 1 }) {
                failures.append("job \(job) (\(count) tasks): tag \(record[0]), hits \(hits)")
                if failures.count >= 5 { break }
            }
            // Poison the record: a task of this job still running would be caught by the next check.
            for i in 0..<count { record[2 + i] = 1000 }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "; "))")
    }
}

/// Tells the competing threads to end.
private final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}
