import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TestSupport
import Trajectory
import XCTest

/// Charts are well-formed XML and contain what they were given.
final class SVGPlotTests: XCTestCase {
    /// Parse with XMLParser; collect element names and the `data-label` of each series.
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [String: Int] = [:]
        var seriesLabels: [String] = []
        var text = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            elements[name, default: 0] += 1
            if attributes["class"] == "series", let label = attributes["data-label"] { seriesLabels.append(label) }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    }

    func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> Collector {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        XCTAssertEqual(collector.elements["svg"], 1, file: file, line: line)
        return collector
    }

    /// Directory for the charts when ENSEMBLE_PLOT_DIR is set (to look at them), else a temporary one.
    func outputDirectory() -> URL {
        if let dir = ProcessInfo.processInfo.environment["ENSEMBLE_PLOT_DIR"] {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return URL(fileURLWithPath: dir)
        }
        return TestPaths.temporaryDirectory("svg")
    }

    func testHistogram() throws {
        var rng = TestRandom(seed: 3)
        let reference = (0..<5000).map { _ in -43 + 7 * rng.normal() }
        let model = (0..<2000).map { _ in -40 + 8 * rng.normal() } + [1e9, .nan]
        let svg = SVGPlot.histogram([.init(label: "reference (MCMC)", samples: reference),
                                     .init(label: "model <EGNN & flow>", samples: model)],
                                    bins: 50, title: "LJ-13 energy", xLabel: "energy / kT")
        let parsed = parse(svg)
        XCTAssertEqual(parsed.seriesLabels, ["reference (MCMC)", "model <EGNN & flow>"])
        XCTAssertTrue(parsed.text.contains("LJ-13 energy"))
        XCTAssertTrue(parsed.text.contains("energy / kT"))
        XCTAssertTrue(parsed.text.contains("density"))
        XCTAssertTrue(parsed.text.contains("model <EGNN & flow> (n=2001)"), "legend with escaped label")
        XCTAssertFalse(svg.contains("nan"), "no NaN leaks into coordinates")
        XCTAssertFalse(svg.contains("inf"))
        let dir = outputDirectory()
        try SVGPlot.write(svg, to: dir.appendingPathComponent("histogram.svg").path)
    }

    func testHeatmap() throws {
        var rng = TestRandom(seed: 4)
        var phi: [Double] = [], psi: [Double] = []
        for _ in 0..<20000 {
            let alpha = rng.uniform() < 0.6
            let p = (alpha ? -1.2 : -2.6) + 0.35 * rng.normal(), q = (alpha ? -0.7 : 2.6) + 0.4 * rng.normal()
            phi.append(remainder(p, 2 * .pi)); psi.append(remainder(q, 2 * .pi))
        }
        let grid = SVGPlot.histogram2D(x: phi, y: psi, bins: 60)
        XCTAssertEqual(grid.values.count, 3600)
        let cellArea = pow(2 * Double.pi / 60, 2)
        assertClose(grid.values.reduce(0, +) * cellArea, 1, absolute: 1e-9)
        let svg = SVGPlot.heatmap(grid, title: "Ramachandran (φ, ψ)", xLabel: "φ / rad", yLabel: "ψ / rad",
                                  colorLabel: "log10 density", scale: .logarithmic)
        let parsed = parse(svg)
        XCTAssertGreaterThan(parsed.elements["rect", default: 0], 100, "cells drawn")
        XCTAssertTrue(parsed.text.contains("log10 density"))
        XCTAssertTrue(parsed.text.contains("φ / rad"))
        XCTAssertTrue(svg.contains("colorbar"))
        let linear = SVGPlot.heatmap(grid, title: "linear", xLabel: "x", yLabel: "y")
        _ = parse(linear)
        try SVGPlot.write(svg, to: outputDirectory().appendingPathComponent("heatmap.svg").path)
    }

    func testLinePlot() throws {
        let r = stride(from: 0.8, through: 3.0, by: 0.02).map { $0 }
        let g = r.map { 1 + 1.8 * exp(-pow($0 - 1.12, 2) / 0.01) - 0.4 * exp(-pow($0 - 1.6, 2) / 0.05) }
        let svg = SVGPlot.linePlot([.init(label: "model", x: r, y: g), .init(label: "reference", x: r, y: g.map { $0 * 0.95 })],
                                   title: "g(r)", xLabel: "r / σ", yLabel: "g(r)")
        let parsed = parse(svg)
        XCTAssertEqual(parsed.seriesLabels, ["model", "reference"])
        let loss = SVGPlot.linePlot([.init(label: "loss", y: (1...200).map { 10 / Double($0) + 0.1 })],
                                    title: "training loss", xLabel: "step", yLabel: "loss", logY: true)
        XCTAssertEqual(parse(loss).seriesLabels, ["loss"])
        let empty = SVGPlot.linePlot([], title: "empty", xLabel: "x", yLabel: "y")
        _ = parse(empty)
        let dir = outputDirectory()
        try SVGPlot.write(svg, to: dir.appendingPathComponent("line.svg").path)
        try SVGPlot.write(loss, to: dir.appendingPathComponent("loss.svg").path)
        XCTAssertThrowsError(try SVGPlot.write(svg, to: "/nonexistent-dir/x.svg"))
    }
}
