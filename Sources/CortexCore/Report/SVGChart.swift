/// A hand-written SVG chart of a benchmark run: stacked panels sharing the time axis, each with
/// its own y axis, ticks, grid and legend. Pure: rows in, text out.
public enum SVGChart {
  public struct Series: Sendable {
    public var key: String
    public var label: String
    public var color: String
    public init(_ key: String, _ label: String, _ color: String) {
      self.key = key
      self.label = label
      self.color = color
    }
  }
  public struct Panel: Sendable {
    public var title: String
    public var unit: String
    public var series: [Series]
    public init(_ title: String, unit: String, _ series: [Series]) {
      self.title = title
      self.unit = unit
      self.series = series
    }
  }

  /// Parses the CSV this project writes (header line, numeric cells; empty cells are skipped).
  public static func parseCSV(_ text: String) -> [[String: Double]] {
    let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    guard let header = lines.first else { return [] }
    return lines.dropFirst().map { cells in
      var row: [String: Double] = [:]
      for (i, c) in cells.enumerated() where i < header.count {
        if let d = Double(c) { row[header[i]] = d }
      }
      return row
    }
  }

  public static func render(title: String, rows: [[String: Double]], x: String, xLabel: String, panels: [Panel]) -> String {
    let width = 900.0, left = 70.0, right = 170.0, panelHeight = 180.0, gap = 50.0, top = 50.0
    let plotW = width - left - right
    let height = top + Double(panels.count) * (panelHeight + gap) + 10
    let xs = rows.compactMap { $0[x] }
    let x0 = xs.min() ?? 0, x1 = max((xs.max() ?? 1), x0 + 1e-9)
    func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * plotW }
    var s = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
      viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(Int(width / 2))" y="24" text-anchor="middle" font-size="16" font-weight="bold">\(escape(title))</text>

      """
    for (pi, panel) in panels.enumerated() {
      let y0 = top + Double(pi) * (panelHeight + gap)
      var ymax = 0.0
      for r in rows { for se in panel.series { if let v = r[se.key] { ymax = max(ymax, v) } } }
      ymax = niceCeiling(ymax)
      func py(_ v: Double) -> Double { y0 + panelHeight - v / ymax * panelHeight }
      s += "<g class=\"panel\" id=\"panel-\(pi)\">\n"
      s += "<text x=\"\(Int(left))\" y=\"\(Int(y0 - 8))\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
      // Grid and y ticks.
      for k in 0...4 {
        let v = ymax * Double(k) / 4
        let y = py(v)
        s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>\n"
        s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(tick(v))</text>\n"
      }
      // Axes.
      s += "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(y0))\" x2=\"\(f(left))\" y2=\"\(f(y0 + panelHeight))\" stroke=\"black\"/>\n"
      s +=
        "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(y0 + panelHeight))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y0 + panelHeight))\" stroke=\"black\"/>\n"
      s +=
        "<text x=\"14\" y=\"\(f(y0 + panelHeight / 2))\" transform=\"rotate(-90 14 \(f(y0 + panelHeight / 2)))\" text-anchor=\"middle\">\(escape(panel.unit))</text>\n"
      for k in 0...5 {
        let v = x0 + (x1 - x0) * Double(k) / 5
        s += "<text x=\"\(f(px(v)))\" y=\"\(f(y0 + panelHeight + 16))\" text-anchor=\"middle\">\(tick(v))</text>\n"
      }
      if pi == panels.count - 1 {
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(y0 + panelHeight + 34))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
      }
      // Series and legend.
      for (si, se) in panel.series.enumerated() {
        let pts = rows.compactMap { r -> String? in
          guard let xv = r[x], let yv = r[se.key] else { return nil }
          return "\(f(px(xv))),\(f(py(yv)))"
        }
        s +=
          "<polyline class=\"series\" data-key=\"\(escape(se.key))\" fill=\"none\" stroke=\"\(se.color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
        let ly = y0 + 14 + Double(si) * 18
        s +=
          "<line x1=\"\(f(left + plotW + 14))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + plotW + 34))\" y2=\"\(f(ly - 4))\" stroke=\"\(se.color)\" stroke-width=\"3\"/>\n"
        s += "<text x=\"\(f(left + plotW + 40))\" y=\"\(f(ly))\">\(escape(se.label))</text>\n"
      }
      s += "</g>\n"
    }
    return s + "</svg>\n"
  }

  static func niceCeiling(_ v: Double) -> Double {
    guard v > 0 else { return 1 }
    var p = 1.0
    while p * 10 <= v { p *= 10 }
    while p > v { p /= 10 }
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] where p * m >= v { return p * m }
    return p * 10
  }

  static func f(_ v: Double) -> String { String(Double(Int((v * 10).rounded())) / 10) }
  static func tick(_ v: Double) -> String {
    if v >= 1000 { return String(Int(v.rounded())) }
    if v == v.rounded() { return String(Int(v)) }
    return String(Double(Int((v * 100).rounded())) / 100)
  }
  static func escape(_ s: String) -> String {
    var o = ""
    for c in s {
      switch c {
      case "<": o += "&lt;"
      case ">": o += "&gt;"
      case "&": o += "&amp;"
      case "\"": o += "&quot;"
      default: o.append(c)
      }
    }
    return o
  }
}
