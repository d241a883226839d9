/// A plain-text table whose columns are as wide as their widest cell (two spaces between), so
/// long names never run into the next column.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: [String]) { self.header = header }

    mutating func append(_ row: [String]) { rows.append(row) }

    /// The table, one line a row (trailing spaces trimmed).
    var text: String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        return all.map { row in
            var line = ""
            for (c, cell) in row.enumerated() {
                line += c == row.count - 1 ? cell : cell.padding(toLength: widths[c] + 2, withPad: " ", startingAt: 0)
            }
            return line
        }.joined(separator: "\n")
    }
}
