import CKernels
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Switchyard

/// `sy_weight_alloc` / `sy_weight_free` (weightmem.c): aligned, writable, disjoint allocations of
/// every size class (carved from a chunk, spanning several chunks, a mapping of their own), the
/// latest allocation handed out again when freed, and concurrent use from several threads.
@Suite struct WeightMemoryTests {
    /// Fills `bytes` at `p` with a pattern of `seed`; `check` reports whether it is intact.
    static func fill(_ p: UnsafeMutableRawPointer, _ bytes: Int, seed: UInt8) {
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in stride(from: 0, to: bytes, by: 61) { b[i] = seed &+ UInt8(truncatingIfNeeded: i / 61) }
        b[bytes - 1] = seed ^ 0x5A
    }

    static func check(_ p: UnsafeMutableRawPointer, _ bytes: Int, seed: UInt8) -> Bool {
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in stride(from: 0, to: bytes - 1, by: 61) where b[i] != seed &+ UInt8(truncatingIfNeeded: i / 61) {
            return false
        }
        return b[bytes - 1] == seed ^ 0x5A
    }

    @Test func allocationsAreAlignedWritableAndDisjoint() {
        // Small ones, ones that fill several 32 MiB chunks, and ones past a quarter chunk (their own mapping).
        let sizes = [1, 63, 64, 65, 4097, 1 << 20, 7 << 20, 7 << 20, 7 << 20, 7 << 20, 7 << 20, 9 << 20, 40 << 20, 100]
        var blocks: [(UnsafeMutableRawPointer, Int)] = []
        for (i, size) in sizes.enumerated() {
            guard let p = sy_weight_alloc(size) else {
                Issue.record("no memory for \(size) bytes")
                return
            }
            #expect(Int(bitPattern: p) % 64 == 0, "allocation \(i) of \(size) bytes at \(p)")
            Self.fill(p, size, seed: UInt8(i))
            blocks.append((p, size))
        }
        for (i, (p, size)) in blocks.enumerated() {
            #expect(Self.check(p, size, seed: UInt8(i)), "allocation \(i) of \(size) bytes was overwritten")
            for (j, (q, other)) in blocks.enumerated() where j > i {
                let disjoint = p + size <= q || q + other <= p
                #expect(disjoint, "allocations \(i) and \(j) overlap")
            }
        }
        for (p, _) in blocks.reversed() { sy_weight_free(p) }
        sy_weight_free(nil)
    }

    @Test func theLatestAllocationIsHandedOutAgain() throws {
        // A loader's attempt that fails and is freed leaves no hole behind it. Other tests load
        // models at the same time (one allocator per process), so an allocation of theirs may
        // come between the free and the next allocation: one of several tries must see it.
        var reused = false
        for _ in 0..<50 where !reused {
            let a = try #require(sy_weight_alloc(1000))
            sy_weight_free(a)
            let b = try #require(sy_weight_alloc(1000))
            reused = a == b
            sy_weight_free(b)
        }
        #expect(reused)
        // Not an earlier one: only the latest is carved again.
        let b = try #require(sy_weight_alloc(1000)), c = try #require(sy_weight_alloc(1000))
        sy_weight_free(b)
        let d = try #require(sy_weight_alloc(1000))
        #expect(d != b && d != c)
        sy_weight_free(c)
        sy_weight_free(d)
    }

    @Test func concurrentUseKeepsEveryAllocationIntact() {
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            var rng = SeededRandom(seed: UInt64(thread + 1))
            var held: [(UnsafeMutableRawPointer, Int, UInt8)] = []
            for round in 0..<300 {
                let size = 1 + Int(rng.next() % 200_000)
                guard let p = sy_weight_alloc(size) else {
                    failures.withLock { $0 += 1 }
                    continue
                }
                let seed = UInt8(truncatingIfNeeded: thread * 64 + round)
                Self.fill(p, size, seed: seed)
                held.append((p, size, seed))
                if held.count > 8 || rng.next() % 3 == 0 {
                    let (q, bytes, s) = held.remove(at: Int(rng.next() % UInt64(held.count)))
                    if !Self.check(q, bytes, seed: s) { failures.withLock { $0 += 1 } }
                    sy_weight_free(q)
                }
            }
            for (q, bytes, s) in held {
                if !Self.check(q, bytes, seed: s) { failures.withLock { $0 += 1 } }
                sy_weight_free(q)
            }
        }
        #expect(failures.withLock { $0 } == 0)
    }
}
