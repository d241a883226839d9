import Foundation

/// The safetensors weights of a Hugging Face model directory: either one `model.safetensors` or
/// shards listed by `model.safetensors.index.json` (`{"weight_map": {tensor: file}}`).
final class CheckpointDirectory: @unchecked Sendable {
    let directory: URL
    /// Open shard files by file name.
    private let files: [String: SafeTensorsFile]
    /// Which file holds each tensor.
    private let location: [String: String]

    init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw SwitchyardError.io(path: directory.path, reason: "model directory not found")
        }
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if fm.fileExists(atPath: single.path) {
            let file = try SafeTensorsFile(url: single)
            files = ["model.safetensors": file]
            location = Dictionary(uniqueKeysWithValues: file.tensors.keys.map { ($0, "model.safetensors") })
        } else if fm.fileExists(atPath: index.path) {
            guard let data = try? Data(contentsOf: index) else {
                throw SwitchyardError.io(path: index.path, reason: "cannot read")
            }
            let fields = try JSONFields(data: data, path: index.path)
            guard let weightMap = try fields.object("weight_map") else { throw fields.error("weight_map", "missing") }
            var map: [String: String] = [:]
            for tensor in weightMap.keys {
                guard let file = try weightMap.string(tensor) else {
                    throw weightMap.error(tensor, "expected a shard file name, found null")
                }
                map[tensor] = file
            }
            var opened: [String: SafeTensorsFile] = [:]
            for name in Set(map.values).sorted() {
                guard !name.contains("/"), !name.hasPrefix(".") else {
                    throw SwitchyardError.config(
                        path: index.path, field: "weight_map",
                        reason: "shard name '\(name)' must be a plain file name in the model directory")
                }
                opened[name] = try SafeTensorsFile(url: directory.appendingPathComponent(name))
            }
            for (tensor, file) in map where opened[file]?.tensors[tensor] == nil {
                throw SwitchyardError.missingTensor(path: directory.appendingPathComponent(file).path, tensor: tensor)
            }
            files = opened
            location = map
        } else {
            let bins = ["pytorch_model.bin", "model.bin"].filter {
                fm.fileExists(atPath: directory.appendingPathComponent($0).path)
            }
            let hint =
                bins.isEmpty
                ? ""
                : " (found \(bins.joined(separator: ", ")): pickle checkpoints are not loaded; convert to safetensors)"
            throw SwitchyardError.io(
                path: directory.path, reason: "no model.safetensors or model.safetensors.index.json\(hint)")
        }
    }

    var tensorNames: [String] { location.keys.sorted() }

    func contains(_ name: String) -> Bool { location[name] != nil }

    /// The file holding `name`.
    func file(for name: String) throws -> SafeTensorsFile {
        guard let f = location[name], let file = files[f] else {
            throw SwitchyardError.missingTensor(path: directory.path, tensor: name)
        }
        return file
    }

    /// The 2-D tensor `name` as Float32, of shape `expected`; NaN and infinity are refused.
    func matrix(_ name: String, expected: [Int]) throws -> Matrix {
        let file = try file(for: name)
        return try FiniteWeights.require(file.matrix(name, expected: expected), path: file.path, tensor: name)
    }

    /// The 1-D tensor `name` as Float32, of length `expected`; NaN and infinity are refused.
    func vector(_ name: String, expected: Int) throws -> [Float] {
        let file = try file(for: name)
        return try FiniteWeights.require(file.vector(name, expected: expected), path: file.path, tensor: name)
    }
}
