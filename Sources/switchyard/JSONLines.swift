import Foundation
import Switchyard

/// JSONL files (one JSON object a line, blank lines skipped) decoded into a `Decodable` type;
/// every error names the file, the line and, for a wrong or missing field, its key.
enum JSONLines {
    static func read<T: Decodable>(_ path: String, as type: T.Type, expected: String) throws -> [T] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SwitchyardError.io(path: path, reason: "cannot read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SwitchyardError.io(path: path, reason: "not valid UTF-8")
        }
        let decoder = JSONDecoder()
        var out: [T] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                out.append(try decoder.decode(T.self, from: Data(line.utf8)))
            } catch let DecodingError.keyNotFound(key, _) {
                throw SwitchyardError.invalidArgument(
                    "\(path):\(n + 1): missing \"\(key.stringValue)\" (expected \(expected))")
            } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
                let field = context.codingPath.map(\.stringValue).joined(separator: ".")
                throw SwitchyardError.invalidArgument(
                    "\(path):\(n + 1): \"\(field)\" is not a string (expected \(expected))")
            } catch {
                throw SwitchyardError.invalidArgument("\(path):\(n + 1): not a JSON object (expected \(expected))")
            }
        }
        return out
    }
}
