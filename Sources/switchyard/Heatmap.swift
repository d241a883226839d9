import Foundation

/// A tokens × experts heatmap as a standalone SVG (readable in any browser).
enum Heatmap {
    static func xml(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Token text made visible: spaces and newlines shown as ␣ and ⏎.
    static func escape(_ s: String) -> String {
        xml(s).replacingOccurrences(of: "\n", with: "⏎").replacingOccurrences(of: " ", with: "␣")
    }

    static func svg(rowLabels: [String], columnLabels: [String], weights: [[Float]], generatedFrom: Int, title: String)
        -> String
    {
        let cell = 22, left = 120, top = 110
        let width = left + cell * columnLabels.count + 100, height = top + cell * rowLabels.count + 20
        var s =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"monospace\" font-size=\"11\">\n"
        s += "<text x=\"8\" y=\"16\" font-size=\"13\">\(xml(title))</text>\n"
        for (j, name) in columnLabels.enumerated() {
            let x = left + j * cell + cell / 2
            s += "<text transform=\"translate(\(x),\(top - 6)) rotate(-60)\">\(escape(name))</text>\n"
        }
        for (i, label) in rowLabels.enumerated() {
            let y = top + i * cell
            let color = i >= generatedFrom ? "#1a5fb4" : "#222"
            s +=
                "<text x=\"\(left - 6)\" y=\"\(y + cell - 7)\" text-anchor=\"end\" fill=\"\(color)\">\(escape(label))</text>\n"
            for (j, w) in weights[i].enumerated() {
                let shade = Int(255 - min(1, max(0, w)) * 200)
                s +=
                    "<rect x=\"\(left + j * cell)\" y=\"\(y)\" width=\"\(cell - 1)\" height=\"\(cell - 1)\" fill=\"rgb(\(shade),\(shade),255)\"><title>\(escape(label)) → \(escape(columnLabels[j])): \(String(format: "%.3f", w))</title></rect>\n"
            }
        }
        return s + "</svg>\n"
    }
}
