import Foundation

/// Writes a file through a temporary sibling and a rename, so readers never see a partial file
/// and an existing file survives a failed write.
///
/// Only a regular file (or nothing) is ever replaced: a symbolic link, a device node, a FIFO, a
/// socket or a directory at the target is refused with an error naming it (as root, replacing
/// `/dev/full` with a regular file was possible). The temporary file is created exclusively and
/// without following links, so a link planted under its name is refused too.
public enum AtomicFile {
    /// Replaces (or creates) the file at `url` with `data` (fsynced; mode 0644 less the umask). Throws `SwitchyardError.io`
    /// naming the path when the target is not a regular file or writing/renaming fails; the
    /// temporary file is removed on failure.
    public static func write(_ data: Data, to url: URL) throws {
        let path = url.path
        try checkReplaceable(path)
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ).path
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SwitchyardError.io(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
        var failure: String? = nil
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        if close(fd) != 0, failure == nil { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(tmp)
            throw SwitchyardError.io(path: path, reason: "cannot write: \(failure)")
        }
        // Checked again just before the rename: the window for a swap is as short as it can be,
        // and rename(2) replaces a directory entry; it never writes through a link.
        do { try checkReplaceable(path) } catch {
            unlink(tmp)
            throw error
        }
        // rename(2) replaces an existing file atomically. (Foundation's replaceItemAt on Linux
        // removed the existing file and then failed, losing it.)
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw SwitchyardError.io(path: path, reason: "cannot replace: \(reason)")
        }
    }

    /// Throws unless `path` is absent or a regular file (a link is not followed: it is refused).
    static func checkReplaceable(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw SwitchyardError.io(path: path, reason: "cannot inspect: \(String(cString: strerror(errno)))")
        }
        let kind: String
        switch st.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFLNK: kind = "a symbolic link"
        case S_IFDIR: kind = "a directory"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        case S_IFIFO: kind = "a FIFO"
        case S_IFSOCK: kind = "a socket"
        default: kind = "not a regular file"
        }
        throw SwitchyardError.io(path: path, reason: "refusing to replace \(kind); only regular files are overwritten")
    }
}
