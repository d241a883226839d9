import Foundation

/// Which base model an adapter was trained on: `switchyard_base.json` in the adapter directory,
/// next to the PEFT files (PEFT ignores files it does not know).
///
/// ```json
/// {"version": 1, "base_fingerprint": "sy1-…", "adapter_model_sha256": "…"}
/// ```
///
/// A sidecar rather than the safetensors `__metadata__`: stamping an existing adapter (one
/// trained by PEFT, the demo's experts) must not change its weights file, whose SHA-256 routers
/// pin. The record names the weights it describes by their SHA-256, so a record left behind when
/// the weights were replaced (a retrain into the same directory) is refused, never trusted.
///
/// On load (`check`): no record → accepted ("base not recorded": PEFT-written adapters); a
/// record for other weights → refused; a fingerprint that does not match the loaded base →
/// refused naming both, unless mismatches are allowed (`--allow-base-mismatch`).
public struct BaseRecord: Sendable, Equatable {
    /// The record's file name inside an adapter directory.
    public static let fileName = "switchyard_base.json"
    static let maxBytes = 4096

    /// The base the adapter was trained on.
    public var fingerprint: BaseFingerprint
    /// SHA-256 (hex) of the `adapter_model.safetensors` this record describes.
    public var weightsSHA256: String

    /// A record of `fingerprint` for the weights whose SHA-256 is `weightsSHA256`.
    public init(fingerprint: BaseFingerprint, weightsSHA256: String) {
        self.fingerprint = fingerprint
        self.weightsSHA256 = weightsSHA256
    }

    /// The record in `directory`, nil when there is none. A record that is not a small regular
    /// file of the format above is an error naming the file and field (a guard that cannot be
    /// read is not silently dropped).
    public static func read(directory: URL) throws -> BaseRecord? {
        let path = directory.appendingPathComponent(fileName).path
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw SwitchyardError.io(
                path: path, reason: "cannot read the base record: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw SwitchyardError.io(path: path, reason: "the base record is not a regular file")
        }
        guard st.st_size <= maxBytes else {
            throw SwitchyardError.io(path: path, reason: "the base record is \(st.st_size) bytes (at most \(maxBytes))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw SwitchyardError.io(path: path, reason: "short read of the base record") }
        let fields = try JSONFields(data: Data(bytes), path: path)
        guard try fields.int("version") == 1 else {
            throw fields.error("version", "expected 1 (the only version of this format)")
        }
        guard let text = try fields.string("base_fingerprint") else {
            throw fields.error("base_fingerprint", "missing")
        }
        guard let fingerprint = BaseFingerprint(text) else {
            throw fields.error(
                "base_fingerprint",
                "\(EscapedText.quoted(text, limit: 80)) is not a fingerprint (sy1-<16 hex>-<32 hex>)")
        }
        guard let sha = try fields.string("adapter_model_sha256") else {
            throw fields.error("adapter_model_sha256", "missing")
        }
        guard sha.utf8.count == 64, sha.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else {
            throw fields.error(
                "adapter_model_sha256", "\(EscapedText.quoted(sha, limit: 80)) is not a lowercase hex SHA-256")
        }
        for key in fields.keys where !["version", "base_fingerprint", "adapter_model_sha256"].contains(key) {
            throw fields.error(key, "unknown field")
        }
        return BaseRecord(fingerprint: fingerprint, weightsSHA256: sha)
    }

    /// Writes the record into `directory` (atomically).
    public func write(to directory: URL) throws {
        let text =
            "{\"version\": 1, \"base_fingerprint\": \"\(fingerprint)\", \"adapter_model_sha256\": \"\(weightsSHA256)\"}\n"
        try AtomicFile.write(Data(text.utf8), to: directory.appendingPathComponent(Self.fileName))
    }

    /// Records that the adapter in `directory` was trained on `base`: hashes its current
    /// weights and writes the record (`switchyard experts stamp`, the training scripts).
    @discardableResult
    public static func stamp(directory: URL, base: BaseFingerprint) throws -> BaseRecord {
        let weights = directory.appendingPathComponent("adapter_model.safetensors").path
        let record = BaseRecord(fingerprint: base, weightsSHA256: try SHA256.hex(fileAt: weights))
        try record.write(to: directory)
        return record
    }

    /// Refuses an adapter whose record describes other weights, or was made for another base
    /// than `base` (unless `allowMismatch`). No record, or no known base (`base` nil: commands
    /// that check experts against the config alone), passes.
    ///
    /// - Parameters:
    ///   - expert: the adapter's name, for the message.
    ///   - directory: the adapter's directory, for the message.
    public static func check(
        _ record: BaseRecord?, weightsSHA256: String, base: BaseFingerprint?,
        allowMismatch: Bool, expert: String, directory: URL
    ) throws {
        guard let record else { return }
        let path = directory.appendingPathComponent(fileName).path
        guard record.weightsSHA256 == weightsSHA256 else {
            throw SwitchyardError.config(
                path: path, field: "adapter_model_sha256",
                reason:
                    "describes weights \(record.weightsSHA256.prefix(16))…, but adapter_model.safetensors is \(weightsSHA256.prefix(16))… (rewritten after the record was made): re-stamp it for the base it was trained on (switchyard experts stamp) or delete the record"
            )
        }
        guard let base, !allowMismatch, !record.fingerprint.matches(base) else { return }
        throw SwitchyardError.invalidArgument(
            "expert \(EscapedText.quoted(expert)) was trained for base \(record.fingerprint), but the loaded base is \(base) (\(record.fingerprint.difference(from: base))); it would run but produce garbage. Use the base it was trained on, or --allow-base-mismatch to load it anyway"
        )
    }
}

extension LoRAAdapter {
    /// Writes the PEFT adapter directory (`write(to:)`) and records `base` as the base it was
    /// trained on; with `base` nil, a record left in `directory` by an earlier adapter is deleted
    /// (it would describe other weights). Every adapter Switchyard writes goes through here.
    public func write(to directory: URL, base: BaseFingerprint?) throws {
        try write(to: directory)
        if let base {
            try BaseRecord.stamp(directory: directory, base: base)
        } else {
            let record = directory.appendingPathComponent(BaseRecord.fileName)
            if FileManager.default.fileExists(atPath: record.path) {
                do { try FileManager.default.removeItem(at: record) } catch {
                    throw SwitchyardError.io(
                        path: record.path, reason: "cannot delete a stale base record: \(error.localizedDescription)")
                }
            }
        }
    }
}
