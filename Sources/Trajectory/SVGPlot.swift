import Foundation

/// Small dependency-free SVG charts for looking at results: overlaid normalised
/// histograms, 2-D heatmaps (e.g. Ramachandran φ/ψ) and line plots.
///
/// Every function returns the SVG text; `write(_:to:)` saves it. Open the file in a
/// browser, or render it with `rsvg-convert -o plot.png plot.svg`.
public enum SVGPlot {
    /// Samples of one histogram series, e.g. the energies of model samples.
    public struct HistogramSeries: Sendable {
        public var label: String
        public var samples: [Double]
        public init(label: String, samples: [Double]) {
            self.label = label
            self.samples = samples
        }
    }

    /// One line of a line plot; `x.count == y.count`. Non-finite points break the line.
    public struct LineSeries: Sendable {
        public var label: String
        public var x: [Double]
        public var y: [Double]
        /// Optional error bars: y ± errors[i] drawn as vertical segments.
        public var errors: [Double]?
        public init(label: String, x: [Double], y: [Double], errors: [Double]? = nil) {
            self.label = label
            self.x = x
            self.y = y
            self.errors = errors
        }
        /// y against 0, 1, 2, … (e.g. a loss per step).
        public init(label: String, y: [Double]) {
            self.init(label: label, x: y.indices.map(Double.init), y: y)
        }
    }

    /// A grid of values over a rectangle: `values[row * columns + column]`, row 0 at the
    /// bottom (smallest y), column 0 at the left (smallest x).
    public struct Grid: Sendable {
        public var columns: Int
        public var rows: Int
        public var values: [Double]
        public var xRange: ClosedRange<Double>
        public var yRange: ClosedRange<Double>
        public init(columns: Int, rows: Int, values: [Double], xRange: ClosedRange<Double>,
                    yRange: ClosedRange<Double>) {
            precondition(values.count == columns * rows, "Grid: values.count must be columns × rows")
            self.columns = columns
            self.rows = rows
            self.values = values
            self.xRange = xRange
            self.yRange = yRange
        }
    }

    /// How a heatmap maps values to colours.
    public enum ColorScale: Sendable {
        /// Linear from the smallest to the largest value.
        case linear
        /// log10 of the value; cells ≤ 0 are left blank (useful for densities spanning decades).
        case logarithmic
    }

    /// Where a legend sits inside the plotting area.
    public enum LegendCorner: Sendable { case topRight, topLeft, bottomRight, bottomLeft }

    /// Colours of a heatmap: viridis (densities) or blue–white–red around zero (differences).
    public enum Palette: Sendable { case viridis, diverging }

    /// Colours for series, in order (Tableau 10).
    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// Save SVG text to `path`.
    /// - Throws: `TrajectoryError.notWritable`.
    public static func write(_ svg: String, to path: String) throws {
        do { try svg.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw TrajectoryError.notWritable(path: path, reason: error.localizedDescription)
        }
    }

    // MARK: - Histograms

    /// Overlaid normalised histograms drawn as step lines: the density of each series,
    /// count / (n · bin width), where n counts all finite samples of that series, so that a
    /// series with samples outside `range` has area below 1 on the plot.
    ///
    /// - Parameters:
    ///   - series: the series; each keeps its palette colour in order.
    ///   - bins: number of equal-width bins.
    ///   - range: x range; by default the union over series of their 0.5–99.5 % quantiles,
    ///     so a few wild outliers do not squash the plot.
    ///   - title, xLabel, yLabel: text on the chart.
    public static func histogram(_ series: [HistogramSeries], bins: Int = 60, range: ClosedRange<Double>? = nil,
                                 title: String, xLabel: String, yLabel: String = "density",
                                 notes: [String] = [], width: Int = 720, height: Int = 450) -> String {
        let bins = max(bins, 1)
        let finite = series.map { $0.samples.filter(\.isFinite) }
        var lo = Double.infinity, hi = -Double.infinity
        if let range {
            lo = range.lowerBound; hi = range.upperBound
        } else {
            for samples in finite where !samples.isEmpty {
                let sorted = samples.sorted()
                lo = min(lo, quantile(sorted, 0.005))
                hi = max(hi, quantile(sorted, 0.995))
            }
        }
        if !lo.isFinite || !hi.isFinite { lo = 0; hi = 1 }
        if hi <= lo { lo -= 0.5; hi += 0.5 }
        let binWidth = (hi - lo) / Double(bins)
        let densities: [[Double]] = finite.map { samples in
            var counts = [Double](repeating: 0, count: bins)
            for v in samples where v >= lo && v <= hi {
                counts[min(Int((v - lo) / binWidth), bins - 1)] += 1
            }
            let norm = samples.isEmpty ? 0 : 1 / (Double(samples.count) * binWidth)
            return counts.map { $0 * norm }
        }
        let top = max(densities.joined().max() ?? 1, 1e-300)
        let frame = PlotFrame(width: width, height: height, x: lo...hi, y: 0...(top * 1.08))
        var body = frame.axes(title: title, xLabel: xLabel, yLabel: yLabel)
        for (k, density) in densities.enumerated() {
            var d = "M\(f(frame.px(lo))),\(f(frame.py(0)))"
            for (b, value) in density.enumerated() {
                let x0 = lo + Double(b) * binWidth
                d += " L\(f(frame.px(x0))),\(f(frame.py(value))) L\(f(frame.px(x0 + binWidth))),\(f(frame.py(value)))"
            }
            d += " L\(f(frame.px(hi))),\(f(frame.py(0)))"
            body += "<path class=\"series\" data-label=\"\(escape(series[k].label))\" d=\"\(d)\" fill=\"none\" "
                + "stroke=\"\(color(k))\" stroke-width=\"1.8\" stroke-linejoin=\"miter\"/>\n"
        }
        body += frame.legend(series.enumerated().map { k, s in ("\(s.label) (n=\(finite[k].count))", color(k)) })
        var allNotes = notes
        let outside = finite.map { samples in samples.filter { $0 < lo || $0 > hi }.count }
        if outside.contains(where: { $0 > 0 }) {
            allNotes.append("range clipped to " + (range == nil ? "the 0.5–99.5 % quantiles" : "\(formatTick(lo, step: binWidth))…\(formatTick(hi, step: binWidth))")
                + ": " + zip(series, outside).map { "\($0.label) \($1)" }.joined(separator: ", ") + " samples outside")
        }
        return withNotes(document(width: width, height: height, title: title, body: body), allNotes)
    }

    // MARK: - Line plots

    /// Lines through (x, y) points, e.g. g(r) or a loss curve.
    /// - Parameter logY: plot log10(y) (non-positive y break the line); tick labels show 10^k.
    public static func linePlot(_ series: [LineSeries], title: String, xLabel: String, yLabel: String,
                                logY: Bool = false, notes: [String] = [], legendCorner: LegendCorner = .topRight,
                                width: Int = 720, height: Int = 450) -> String {
        let transformed: [[(Double, Double)]] = series.map { s in
            zip(s.x, s.y).map { x, y in (x, logY ? (y > 0 ? log10(y) : .nan) : y) }
        }
        var points = transformed.joined().filter { $0.0.isFinite && $0.1.isFinite }
        for s in series where !logY { if let e = s.errors {
            for (i, (x, y)) in zip(s.x, s.y).enumerated() where i < e.count && e[i].isFinite {
                points += [(x, y - e[i]), (x, y + e[i])]
            }
        } }
        var xs = (points.map(\.0).min() ?? 0)...(points.map(\.0).max() ?? 1)
        var ys = (points.map(\.1).min() ?? 0)...(points.map(\.1).max() ?? 1)
        if xs.upperBound <= xs.lowerBound { xs = (xs.lowerBound - 0.5)...(xs.upperBound + 0.5) }
        if ys.upperBound <= ys.lowerBound { ys = (ys.lowerBound - 0.5)...(ys.upperBound + 0.5) }
        let pad = 0.05 * (ys.upperBound - ys.lowerBound)
        ys = (ys.lowerBound - pad)...(ys.upperBound + pad)
        let frame = PlotFrame(width: width, height: height, x: xs, y: ys, logY: logY)
        var body = frame.axes(title: title, xLabel: xLabel, yLabel: yLabel)
        for (k, line) in transformed.enumerated() {
            var d = ""
            var penDown = false
            for (x, y) in line {
                guard x.isFinite, y.isFinite else { penDown = false; continue }
                d += (penDown ? " L" : " M") + "\(f(frame.px(x))),\(f(frame.py(y)))"
                penDown = true
            }
            body += "<path class=\"series\" data-label=\"\(escape(series[k].label))\" d=\"\(d.trimmingCharacters(in: .whitespaces))\" "
                + "fill=\"none\" stroke=\"\(color(k))\" stroke-width=\"1.8\" stroke-linejoin=\"round\"/>\n"
            if let e = series[k].errors, !logY {
                var bars = ""
                for (i, (x, y)) in zip(series[k].x, series[k].y).enumerated()
                where i < e.count && e[i].isFinite && e[i] > 0 && x.isFinite && y.isFinite {
                    bars += " M\(f(frame.px(x))),\(f(frame.py(y - e[i]))) L\(f(frame.px(x))),\(f(frame.py(y + e[i])))"
                }
                if !bars.isEmpty {
                    body += "<path class=\"errors\" d=\"\(bars.trimmingCharacters(in: .whitespaces))\" stroke=\"\(color(k))\" stroke-width=\"1\"/>\n"
                }
            }
        }
        if series.count > 1 || !(series.first?.label.isEmpty ?? true) {
            body += frame.legend(series.enumerated().map { k, s in (s.label, color(k)) }, corner: legendCorner)
        }
        return withNotes(document(width: width, height: height, title: title, body: body), notes)
    }

    // MARK: - Heatmaps

    /// Bin (x, y) pairs into a `bins × bins` grid of probability density (count / (n · cell area)),
    /// e.g. φ/ψ dihedrals over (−π, π]² for a Ramachandran plot. Pairs outside the ranges
    /// are counted in n but not binned.
    public static func histogram2D(x: [Double], y: [Double], bins: Int = 60,
                                   xRange: ClosedRange<Double> = -Double.pi...Double.pi,
                                   yRange: ClosedRange<Double> = -Double.pi...Double.pi) -> Grid {
        let bins = max(bins, 1)
        var counts = [Double](repeating: 0, count: bins * bins)
        let dx = (xRange.upperBound - xRange.lowerBound) / Double(bins)
        let dy = (yRange.upperBound - yRange.lowerBound) / Double(bins)
        var n = 0
        for (a, b) in zip(x, y) where a.isFinite && b.isFinite {
            n += 1
            guard xRange.contains(a), yRange.contains(b) else { continue }
            let column = min(Int((a - xRange.lowerBound) / dx), bins - 1)
            let row = min(Int((b - yRange.lowerBound) / dy), bins - 1)
            counts[row * bins + column] += 1
        }
        let norm = n == 0 ? 0 : 1 / (Double(n) * dx * dy)
        return Grid(columns: bins, rows: bins, values: counts.map { $0 * norm }, xRange: xRange, yRange: yRange)
    }

    /// A heatmap of `grid` with a colour bar (viridis colours; blank where there is no value).
    /// - Parameters:
    ///   - colorLabel: label of the colour bar, e.g. "density" or "log10 density".
    ///   - scale: `.linear` or `.logarithmic` (log10, empty cells blank).
    public static func heatmap(_ grid: Grid, title: String, xLabel: String, yLabel: String,
                               colorLabel: String = "density", scale: ColorScale = .linear,
                               range: ClosedRange<Double>? = nil, palette: Palette = .viridis,
                               xTicks: [Double]? = nil, yTicks: [Double]? = nil,
                               width: Int = 620, height: Int = 520) -> String {
        let mapped = grid.values.map { v -> Double in
            switch scale {
            case .linear: return v
            case .logarithmic: return v > 0 ? log10(v) : .nan
            }
        }
        let finite = mapped.filter(\.isFinite)
        var vmin = finite.min() ?? 0, vmax = finite.max() ?? 1
        if scale == .linear { vmin = min(vmin, 0) }
        if let range { vmin = range.lowerBound; vmax = range.upperBound }
        if vmax <= vmin { vmax = vmin + 1 }
        let colour: (Double) -> String = palette == .viridis ? viridis : diverging
        let frame = PlotFrame(width: width, height: height, x: grid.xRange, y: grid.yRange,
                              rightMargin: 110, square: true)
        var body = ""
        let cw = (frame.px(grid.xRange.upperBound) - frame.px(grid.xRange.lowerBound)) / Double(grid.columns)
        let ch = (frame.py(grid.yRange.lowerBound) - frame.py(grid.yRange.upperBound)) / Double(grid.rows)
        body += "<g class=\"cells\" shape-rendering=\"crispEdges\">\n"
        for row in 0..<grid.rows {
            for column in 0..<grid.columns {
                let v = mapped[row * grid.columns + column]
                guard v.isFinite, scale == .logarithmic || v != 0 else { continue }
                let x = frame.px(grid.xRange.lowerBound) + Double(column) * cw
                let y = frame.py(grid.yRange.lowerBound) - Double(row + 1) * ch
                body += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cw + 0.3))\" height=\"\(f(ch + 0.3))\" "
                    + "fill=\"\(colour(min(1, max(0, (v - vmin) / (vmax - vmin)))))\"/>\n"
            }
        }
        body += "</g>\n"
        body += frame.axes(title: title, xLabel: xLabel, yLabel: yLabel, grid: false, xTicks: xTicks, yTicks: yTicks)
        // Colour bar.
        let barX = Double(frame.width) - frame.right + 22, barW = 16.0
        let barTop = frame.top, barBottom = Double(frame.height) - frame.bottom
        body += "<defs><linearGradient id=\"colorbar-\(palette == .viridis ? "v" : "d")\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for i in 0...10 {
            body += "<stop offset=\"\(f(Double(i) / 10))\" stop-color=\"\(colour(Double(i) / 10))\"/>"
        }
        body += "</linearGradient></defs>\n"
        body += "<rect class=\"colorbar\" x=\"\(f(barX))\" y=\"\(f(barTop))\" width=\"\(f(barW))\" height=\"\(f(barBottom - barTop))\" "
            + "fill=\"url(#colorbar-\(palette == .viridis ? "v" : "d"))\" stroke=\"#333\" stroke-width=\"0.8\"/>\n"
        let ticks = niceTicks(vmin, vmax, count: 6)
        for t in ticks.values where t >= vmin - 1e-12 && t <= vmax + 1e-12 {
            let y = barBottom - (t - vmin) / (vmax - vmin) * (barBottom - barTop)
            body += "<line x1=\"\(f(barX + barW))\" y1=\"\(f(y))\" x2=\"\(f(barX + barW + 4))\" y2=\"\(f(y))\" stroke=\"#333\"/>"
            body += "<text x=\"\(f(barX + barW + 7))\" y=\"\(f(y + 4))\" font-size=\"11\">\(formatTick(t, step: ticks.step))</text>\n"
        }
        let labelX = barX + barW + 58, labelY = (barTop + barBottom) / 2
        body += "<text x=\"\(f(labelX))\" y=\"\(f(labelY))\" font-size=\"13\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 \(f(labelX)) \(f(labelY)))\">\(escape(colorLabel))</text>\n"
        return document(width: width, height: height, title: title, body: body)
    }

    // MARK: - Helpers

    static func color(_ k: Int) -> String { palette[k % palette.count] }

    /// Blue (0) – white (0.5) – red (1), for signed differences.
    static func diverging(_ t: Double) -> String {
        let t = min(1, max(0, t))
        let (r, g, b): (Double, Double, Double) = t < 0.5
            ? (0.23 + (1 - 0.23) * t * 2, 0.30 + (1 - 0.30) * t * 2, 0.75 + (1 - 0.75) * t * 2)
            : (1 - (1 - 0.71) * (t - 0.5) * 2, 1 - (1 - 0.02) * (t - 0.5) * 2, 1 - (1 - 0.15) * (t - 0.5) * 2)
        return String(format: "#%02x%02x%02x", Int(r * 255), Int(g * 255), Int(b * 255))
    }

    /// `chart` with lines of text (metric values, caveats) below it.
    static func withNotes(_ chart: String, _ notes: [String]) -> String {
        notes.isEmpty ? chart : row([chart], title: "", notes: notes)
    }

    /// Charts made by this type side by side in one SVG, under a common title, with lines of
    /// text (metrics) below them.
    public static func row(_ charts: [String], title: String, notes: [String] = []) -> String {
        func size(_ svg: String, _ key: String) -> Int {
            guard let range = svg.range(of: " \(key)=\"") else { return 0 }
            return Int(svg[range.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        let widths = charts.map { size($0, "width") }, heights = charts.map { size($0, "height") }
        let top = title.isEmpty ? 0 : 34, bottom = notes.isEmpty ? 0 : 14 + 18 * notes.count
        let width = widths.reduce(0, +), height = (heights.max() ?? 0) + top + bottom
        var body = title.isEmpty ? "" : "<text class=\"title\" x=\"\(width / 2)\" y=\"24\" font-size=\"17\" font-weight=\"bold\" "
            + "text-anchor=\"middle\">\(escape(title))</text>\n"
        var x = 0
        for (k, chart) in charts.enumerated() {
            // The chart's content (after its <svg ...> tag, before </svg>) as a translated group,
            // its gradient ids made unique within the row.
            var inner = Substring(chart)
            if let open = chart.range(of: "<svg "), let close = chart[open.upperBound...].firstIndex(of: ">"),
               let end = chart.range(of: "</svg>", options: .backwards) {
                inner = chart[chart.index(after: close)..<end.lowerBound]
            }
            let content = String(inner).replacingOccurrences(of: "id=\"colorbar-", with: "id=\"c\(k)-colorbar-")
                .replacingOccurrences(of: "url(#colorbar-", with: "url(#c\(k)-colorbar-")
            body += "<g transform=\"translate(\(x) \(top))\">\n\(content)</g>\n"
            x += widths[k]
        }
        for (i, note) in notes.enumerated() {
            body += "<text class=\"note\" x=\"16\" y=\"\(height - bottom + 14 + 18 * i)\" font-size=\"13\">\(escape(note))</text>\n"
        }
        return document(width: width, height: height, title: title, body: body)
    }

    static func document(width: Int, height: Int, title: String, body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
        <title>\(escape(title))</title>
        <rect width="100%" height="100%" fill="white"/>
        \(body)</svg>

        """
    }

    /// Escape text for XML content and attributes.
    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A coordinate with two decimals.
    static func f(_ v: Double) -> String { String(format: "%.2f", v) }

    /// Linear-interpolated quantile of sorted values.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let i = Int(position.rounded(.down)), j = min(i + 1, sorted.count - 1)
        return sorted[i] + (position - Double(i)) * (sorted[j] - sorted[i])
    }

    /// Ticks at 1, 2 or 5 × 10^k spacing covering [lo, hi], about `count` of them.
    static func niceTicks(_ lo: Double, _ hi: Double, count: Int = 6) -> (values: [Double], step: Double) {
        let span = hi - lo
        guard span > 0, span.isFinite else { return ([lo], 1) }
        let raw = span / Double(max(count - 1, 1))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let residual = raw / magnitude
        let step = (residual < 1.5 ? 1 : residual < 3 ? 2 : residual < 7 ? 5 : 10) * magnitude
        var values: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + step * 1e-9 {
            values.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return (values, step)
    }

    /// Ticks for a log10 axis spanning [lo, hi] (in log10 units): 1, 2, 5 × 10^k when the
    /// span is at most 3 decades, powers of ten (thinned to ≤ 8) otherwise; labels in plain numbers.
    static func logTicks(_ lo: Double, _ hi: Double) -> [(value: Double, label: String)] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return [] }
        let first = Int(lo.rounded(.down)), last = Int(hi.rounded(.up))
        let mantissas: [Double] = hi - lo <= 3 ? [1, 2, 5] : [1]
        let stride = max(1, (last - first + 7) / 8)
        var ticks: [(Double, String)] = []
        for k in first...last where (k - first) % stride == 0 {
            for m in mantissas {
                let v = log10(m) + Double(k)
                if v >= lo - 1e-9 && v <= hi + 1e-9 { ticks.append((v, String(format: "%g", m * pow(10, Double(k))))) }
            }
        }
        return ticks
    }

    /// Tick text with as many decimals as the step needs.
    static func formatTick(_ v: Double, step: Double) -> String {
        if v != 0 && (abs(v) >= 1e5 || abs(v) < 1e-3) { return String(format: "%.2g", v) }
        let decimals = max(0, Int(-(log10(step)).rounded(.down)))
        return String(format: "%.\(decimals)f", v)
    }

    /// Viridis colour map, t in [0, 1] (piecewise-linear through 9 samples of matplotlib's map).
    static func viridis(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [
            (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
            (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
        ]
        let x = min(max(t.isFinite ? t : 0, 0), 1) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2), w = x - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        func mix(_ p: Double, _ q: Double) -> Int { Int((p + w * (q - p)).rounded()) }
        return String(format: "#%02x%02x%02x", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// The plotting rectangle of a chart and its data-to-pixel mapping.
struct PlotFrame {
    let width: Int, height: Int
    let x: ClosedRange<Double>, y: ClosedRange<Double>
    let left = 78.0, top = 44.0, bottom = 58.0
    let right: Double
    let logY: Bool

    init(width: Int, height: Int, x: ClosedRange<Double>, y: ClosedRange<Double>, logY: Bool = false,
         rightMargin: Double = 24, square: Bool = false) {
        self.width = width
        self.height = height
        self.x = x
        self.y = y
        self.logY = logY
        var right = rightMargin
        if square {  // make the plotting area square by widening the right margin
            let plotHeight = Double(height) - 44 - 58
            right = max(rightMargin, Double(width) - 78 - plotHeight)
        }
        self.right = right
    }

    func px(_ v: Double) -> Double {
        left + (v - x.lowerBound) / (x.upperBound - x.lowerBound) * (Double(width) - left - right)
    }

    func py(_ v: Double) -> Double {
        Double(height) - bottom - (v - y.lowerBound) / (y.upperBound - y.lowerBound) * (Double(height) - top - bottom)
    }

    /// Frame, grid lines, ticks, tick labels, axis labels and title.
    func axes(title: String, xLabel: String, yLabel: String, grid: Bool = true,
              xTicks: [Double]? = nil, yTicks fixedYTicks: [Double]? = nil) -> String {
        typealias P = SVGPlot
        let x0 = left, x1 = Double(width) - right, y0 = Double(height) - bottom, y1 = top
        var s = "<g class=\"axes\" font-size=\"12\" fill=\"#222\">\n"
        let xt = xTicks.map { (values: $0, step: 1.0) } ?? P.niceTicks(x.lowerBound, x.upperBound, count: 7)
        for t in xt.values {
            let p = px(t)
            if grid { s += "<line x1=\"\(P.f(p))\" y1=\"\(P.f(y1))\" x2=\"\(P.f(p))\" y2=\"\(P.f(y0))\" stroke=\"#e6e6e6\"/>" }
            s += "<line x1=\"\(P.f(p))\" y1=\"\(P.f(y0))\" x2=\"\(P.f(p))\" y2=\"\(P.f(y0 + 5))\" stroke=\"#333\"/>"
            s += "<text x=\"\(P.f(p))\" y=\"\(P.f(y0 + 18))\" text-anchor=\"middle\">\(P.formatTick(t, step: xt.step))</text>\n"
        }
        let yTicks: [(value: Double, label: String)]
        if let fixedYTicks {
            yTicks = fixedYTicks.map { ($0, P.formatTick($0, step: 1)) }
        } else if logY {
            yTicks = P.logTicks(y.lowerBound, y.upperBound)
        } else {
            let yt = P.niceTicks(y.lowerBound, y.upperBound, count: 6)
            yTicks = yt.values.map { ($0, P.formatTick($0, step: yt.step)) }
        }
        for (t, label) in yTicks {
            let p = py(t)
            if grid { s += "<line x1=\"\(P.f(x0))\" y1=\"\(P.f(p))\" x2=\"\(P.f(x1))\" y2=\"\(P.f(p))\" stroke=\"#e6e6e6\"/>" }
            s += "<line x1=\"\(P.f(x0 - 5))\" y1=\"\(P.f(p))\" x2=\"\(P.f(x0))\" y2=\"\(P.f(p))\" stroke=\"#333\"/>"
            s += "<text x=\"\(P.f(x0 - 8))\" y=\"\(P.f(p + 4))\" text-anchor=\"end\">\(label)</text>\n"
        }
        s += "<rect x=\"\(P.f(x0))\" y=\"\(P.f(y1))\" width=\"\(P.f(x1 - x0))\" height=\"\(P.f(y0 - y1))\" "
            + "fill=\"none\" stroke=\"#333\" stroke-width=\"1\"/>\n"
        s += "<text class=\"xlabel\" x=\"\(P.f((x0 + x1) / 2))\" y=\"\(P.f(Double(height) - 14))\" font-size=\"14\" "
            + "text-anchor=\"middle\">\(P.escape(xLabel))</text>\n"
        let ly = (y0 + y1) / 2
        s += "<text class=\"ylabel\" x=\"20\" y=\"\(P.f(ly))\" font-size=\"14\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 20 \(P.f(ly)))\">\(P.escape(yLabel))</text>\n"
        s += "<text class=\"title\" x=\"\(P.f((x0 + x1) / 2))\" y=\"26\" font-size=\"16\" font-weight=\"bold\" "
            + "text-anchor=\"middle\">\(P.escape(title))</text>\n"
        return s + "</g>\n"
    }

    /// A legend box in the top-right corner of the plotting area.
    func legend(_ entries: [(String, String)], corner: SVGPlot.LegendCorner = .topRight) -> String {
        typealias P = SVGPlot
        guard !entries.isEmpty else { return "" }
        let longest = entries.map { $0.0.count }.max() ?? 0
        let boxWidth = Double(longest) * 7.0 + 44, boxHeight = Double(entries.count) * 18 + 10
        let (bx, by) = place(boxWidth, boxHeight, corner)
        var s = "<g class=\"legend\" font-size=\"12\">\n"
        s += "<rect x=\"\(P.f(bx))\" y=\"\(P.f(by))\" width=\"\(P.f(boxWidth))\" height=\"\(P.f(boxHeight))\" "
            + "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n"
        for (i, (label, color)) in entries.enumerated() {
            let yy = by + 14 + Double(i) * 18
            s += "<line x1=\"\(P.f(bx + 8))\" y1=\"\(P.f(yy))\" x2=\"\(P.f(bx + 30))\" y2=\"\(P.f(yy))\" "
                + "stroke=\"\(color)\" stroke-width=\"2.5\"/>"
            s += "<text x=\"\(P.f(bx + 36))\" y=\"\(P.f(yy + 4))\">\(P.escape(label))</text>\n"
        }
        return s + "</g>\n"
    }

    /// Top-left corner of a box of this size in `corner` of the plotting area (8 px inside).
    func place(_ boxWidth: Double, _ boxHeight: Double, _ corner: SVGPlot.LegendCorner) -> (Double, Double) {
        let leftX = left + 8, rightX = Double(width) - right - boxWidth - 8
        let topY = top + 8, bottomY = Double(height) - bottom - boxHeight - 8
        switch corner {
        case .topRight: return (rightX, topY)
        case .topLeft: return (leftX, topY)
        case .bottomRight: return (rightX, bottomY)
        case .bottomLeft: return (leftX, bottomY)
        }
    }

    /// Lines of text (metric values, caveats) in a translucent box in `corner`.
    func notes(_ lines: [String], corner: SVGPlot.LegendCorner = .topLeft) -> String {
        typealias P = SVGPlot
        guard !lines.isEmpty else { return "" }
        let longest = lines.map(\.count).max() ?? 0
        let boxWidth = Double(longest) * 6.6 + 16, boxHeight = Double(lines.count) * 16 + 8
        let (bx, by) = place(boxWidth, boxHeight, corner)
        var s = "<g class=\"notes\" font-size=\"12\">\n<rect x=\"\(P.f(bx))\" y=\"\(P.f(by))\" width=\"\(P.f(boxWidth))\" "
            + "height=\"\(P.f(boxHeight))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n"
        for (i, line) in lines.enumerated() {
            s += "<text x=\"\(P.f(bx + 8))\" y=\"\(P.f(by + 17 + Double(i) * 16))\">\(P.escape(line))</text>\n"
        }
        return s + "</g>\n"
    }
}
