import Foundation

/// What identifies one version of a file without reading it: size, modification time (ns),
/// inode and device. Replacing or rewriting the file changes at least one of them.
struct FileStamp: Sendable, Equatable, Hashable {
    var size: Int64
    var modifiedNanoseconds: Int64
    var inode: UInt64
    var device: UInt64

    /// The stamp of the file at `path` (following links), nil when it cannot be stat'ed or is not
    /// a regular file.
    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        size = Int64(st.st_size)
        #if canImport(Darwin)
            let mtime = st.st_mtimespec
        #else
            let mtime = st.st_mtim
        #endif
        modifiedNanoseconds = Int64(mtime.tv_sec) &* 1_000_000_000 &+ Int64(mtime.tv_nsec)
        inode = UInt64(st.st_ino)
        device = UInt64(st.st_dev)
    }

    init(size: Int64, modifiedNanoseconds: Int64, inode: UInt64, device: UInt64) {
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
        self.inode = inode
        self.device = device
    }
}

/// The SHA-256 of an expert's `adapter_model.safetensors`, computed on first need and remembered
/// in a sidecar file next to it (`.switchyard-sha256.json` in the expert's directory), keyed by
/// the weights file's `FileStamp`.
///
/// The sidecar is only ever a cache: it is used when its stamp equals the file's current stamp
/// exactly, and ignored (then rewritten) when it is missing, unreadable, malformed, larger than a
/// few hundred bytes, describes another file (copied from another expert: another inode), or
/// describes an older version of this one. Writing it is best-effort (a read-only registry just
/// hashes again in the next process). Nothing but the hash is ever read from it.
enum ExpertHashCache {
    static let sidecarName = ".switchyard-sha256.json"
    static let maxSidecarBytes = 512

    /// The hash of `weights`, from the sidecar in `directory` when it matches, else computed (and
    /// the sidecar written). `stamp` is the weights file's current stamp.
    static func sha256(weights: String, stamp: FileStamp, directory: URL) throws -> String {
        let sidecar = directory.appendingPathComponent(sidecarName)
        if let cached = read(sidecar.path, stamp: stamp) { return cached }
        let hash = try SHA256.hex(fileAt: weights)
        // The file may have changed while it was read: only a stamp that still holds is recorded.
        if FileStamp(path: weights) == stamp { write(hash, stamp: stamp, to: sidecar) }
        return hash
    }

    /// The cached hash when the sidecar at `path` is well-formed and describes exactly `stamp`.
    static func read(_ path: String, stamp: FileStamp) -> String? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size <= maxSidecarBytes else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count,
            let value = try? StrictJSON.parse(bytes), let entries = value.objectEntries
        else { return nil }
        let fields = JSONFields(entries: entries, path: path)
        guard (try? fields.int("version")) == 1,
            let size = try? fields.int("size"), let mtime = try? fields.int("mtime_ns"),
            let inode = try? fields.string("inode"), let device = try? fields.string("device"),
            let hash = try? fields.string("sha256"),
            FileStamp(
                size: Int64(size), modifiedNanoseconds: Int64(mtime),
                inode: UInt64(inode) ?? 0, device: UInt64(device) ?? 0) == stamp,
            hash.count == 64, hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        return hash
    }

    /// Writes the sidecar atomically; failures (read-only directory, a hostile entry at the
    /// name) are ignored.
    static func write(_ hash: String, stamp: FileStamp, to url: URL) {
        // Inode and device as strings: JSON integers are read as signed 64-bit.
        let text =
            "{\"version\": 1, \"size\": \(stamp.size), \"mtime_ns\": \(stamp.modifiedNanoseconds), "
            + "\"inode\": \"\(stamp.inode)\", \"device\": \"\(stamp.device)\", \"sha256\": \"\(hash)\"}\n"
        try? AtomicFile.write(Data(text.utf8), to: url)
    }
}
