import Foundation
import PluginHost
import TestSupport
import XCTest

/// The loader against real shared libraries compiled during the test.
final class PluginLoaderTests: XCTestCase {
    /// A C plugin template whose defects are switched on by -D flags.
    static let brokenSource = """
        #include "ensemble_plugin.h"
        #include <stdlib.h>
        static ensemble_system *create(const char *p, char *e, size_t c) { (void)p; (void)e; (void)c; return malloc(1); }
        static void destroy(ensemble_system *s) { free(s); }
        static int32_t count(const ensemble_system *s) { (void)s; return 3; }
        static int32_t dim(const ensemble_system *s) { (void)s; return 3; }
        static int32_t evaluate(const ensemble_system *s, int64_t b, const double *x, double *u, double *g, char *e, size_t c) {
            (void)s; (void)x; (void)g; (void)e; (void)c; for (int64_t i = 0; i < b; i++) u[i] = 0; return 0; }
        #ifdef WITH_BONDS
        static int32_t bonds(const ensemble_system *s, int32_t *pairs, int32_t capacity) {
            (void)s; static const int32_t b[4] = {0, 1, 2, 1};
            for (int32_t k = 0; k < 4 && k < 2 * capacity; k++) pairs[k] = b[k];
            return 2; }
        #endif
        static ensemble_plugin table = {
        #ifdef WRONG_ABI
            .abi_version = 99,
        #else
            .abi_version = ENSEMBLE_PLUGIN_ABI_VERSION,
        #endif
        #if defined(SMALL_STRUCT)
            .struct_size = 16,
        #elif defined(V10_STRUCT)
            .struct_size = offsetof(ensemble_plugin, bonds),
        #else
            .struct_size = sizeof(ensemble_plugin),
        #endif
        #if defined(NULL_NAME)
            .name = NULL,
        #elif defined(EMPTY_NAME)
            .name = "",
        #else
            .name = PLUGIN_NAME,
        #endif
            .version = "0.1", .description = "test", .parameters_help = "",
            .create = create, .destroy = destroy, .particle_count = count, .dimension = dim,
        #ifndef NO_EVALUATE
            .evaluate = evaluate,
        #endif
        #ifdef WITH_BONDS
            .bonds = bonds,
        #endif
        };
        #ifndef NO_ENTRY
        const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
        #else
        const ensemble_plugin *some_other_symbol(void) { return &table; }
        #endif
        """

    func testCExamplePluginLoadsThroughDlopenAndIsCorrect() throws {
        let library = try buildHarmonicPlugin()
        let plugin = try PluginLoader.load(path: library.path)
        XCTAssertEqual(plugin.name, "harmonic")
        XCTAssertEqual(plugin.version, "1.0.0")
        let system = try plugin.makeSystem(parameters: "k=2; temperature=0.5 particles=2")
        XCTAssertEqual(system.particleCount, 2)
        XCTAssertEqual(system.dimension, 3)
        XCTAssertNil(system.box)
        XCTAssertNil(system.atoms())
        let x = [0.1, -0.2, 0.3, 1.0, 0.5, -0.4]
        let (u, g) = try system.evaluate(x, batch: 1)
        // u = k/(2kT) Σx² = 2 Σx²
        assertClose(u[0], 2 * x.reduce(0) { $0 + $1 * $1 }, relative: 1e-14)
        let fd = try finiteDifferenceGradient(x) { try system.energy($0) }
        for i in x.indices { assertClose(g[i], fd[i], relative: 1e-7, absolute: 1e-9) }
        XCTAssertThrowsError(try plugin.makeSystem(parameters: "spring=3")) { error in
            XCTAssertTrue("\(error)".contains("spring"), "\(error)")
        }
    }

    func testSwiftExamplePluginCompilesAndLoads() throws {
        let directory = TestPaths.temporaryDirectory("swift-plugin")
        let output = directory.appendingPathComponent("libharmonic-swift.so")
        let root = TestPaths.repositoryRoot
        let swiftc = try runProcess("/usr/bin/env", [
            "swiftc", "-O", "-emit-library", "-module-name", "HarmonicSwift",
            "-I", root.appendingPathComponent("Sources/EnsemblePluginABI/include").path,
            root.appendingPathComponent("docs/examples/HarmonicSwift.swift").path, "-o", output.path,
        ])
        XCTAssertEqual(swiftc.status, 0, swiftc.stderr)
        let plugin = try PluginLoader.load(path: output.path)
        XCTAssertEqual(plugin.name, "harmonic-swift")
        let system = try plugin.makeSystem(parameters: "k=3 particles=2")
        let (u, g) = try system.evaluate([1, 0, 0, 0, 2, 0], batch: 1)
        assertClose(u[0], 1.5 * 5, relative: 1e-14)
        XCTAssertEqual(g, [3, 0, 0, 0, 6, 0])
        // The C and the Swift plugins (and the shipped Swift plugins) load side by side.
        let c = try PluginLoader.load(path: try buildHarmonicPlugin().path)
        XCTAssertEqual(c.name, "harmonic")
    }

    func testEveryBrokenPluginIsReportedAndNeverStopsTheOthers() throws {
        let directory = TestPaths.temporaryDirectory("broken")
        let source = directory.appendingPathComponent("broken.c")
        try Self.brokenSource.write(to: source, atomically: true, encoding: .utf8)
        let cases: [(String, [String], String)] = [
            ("good", ["PLUGIN_NAME=\"good\""], ""),
            ("wrongabi", ["PLUGIN_NAME=\"w\"", "WRONG_ABI"], "ABI version 99"),
            ("small", ["PLUGIN_NAME=\"s\"", "SMALL_STRUCT"], "16 bytes"),
            ("nullname", ["PLUGIN_NAME=\"n\"", "NULL_NAME"], "NULL or empty"),
            ("emptyname", ["PLUGIN_NAME=\"e\"", "EMPTY_NAME"], "NULL or empty"),
            ("noentry", ["PLUGIN_NAME=\"x\"", "NO_ENTRY"], "no symbol 'ensemble_plugin_entry'"),
            ("noevaluate", ["PLUGIN_NAME=\"v\"", "NO_EVALUATE"], "'evaluate' is NULL"),
            ("zduplicate", ["PLUGIN_NAME=\"good\""], "already loaded"),
        ]
        for (name, defines, _) in cases {
            _ = try compileCPlugin(source: source, name: name, in: directory, defines: defines)
        }
        try "this is not an ELF file".write(to: directory.appendingPathComponent("libtext.so"),
                                            atomically: true, encoding: .utf8)
        let discovery = PluginLoader.discover(in: [directory.path])
        XCTAssertEqual(discovery.plugins.map(\.name), ["good"])
        let reasons = Dictionary(uniqueKeysWithValues: discovery.failures.map {
            (URL(fileURLWithPath: $0.path).lastPathComponent, "\($0.error)")
        })
        for (name, _, expected) in cases where !expected.isEmpty {
            let reason = try XCTUnwrap(reasons["lib\(name).so"], "lib\(name).so was not reported")
            XCTAssertTrue(reason.contains(expected), "lib\(name).so: \(reason)")
            XCTAssertTrue(reason.contains("lib\(name).so"), "the reason names the file: \(reason)")
        }
        XCTAssertTrue(reasons["libtext.so"]?.contains("not a loadable shared library") == true, "\(reasons)")
        XCTAssertEqual(discovery.failures.count, cases.count) // 7 broken + the text file
    }

    /// Bonds (ABI minor 1): reported as sorted index pairs; a plugin built against the 1.0 table
    /// (struct_size before `bonds`) still loads, and the host never reads past its table, even
    /// when the field after it holds a function.
    func testBondsAreReadOnlyWhereTheTableHasThem() throws {
        let directory = TestPaths.temporaryDirectory("bonds")
        let source = directory.appendingPathComponent("bonds.c")
        try Self.brokenSource.write(to: source, atomically: true, encoding: .utf8)
        let with = try compileCPlugin(source: source, name: "withbonds", in: directory, defines: ["PLUGIN_NAME=\"b\"", "WITH_BONDS"])
        let old = try compileCPlugin(source: source, name: "oldtable", in: directory,
                                     defines: ["PLUGIN_NAME=\"o\"", "WITH_BONDS", "V10_STRUCT"])
        let plain = try compileCPlugin(source: source, name: "nobonds", in: directory, defines: ["PLUGIN_NAME=\"p\""])
        let bonds = try XCTUnwrap(PluginLoader.load(path: with.path).makeSystem().bonds())
        XCTAssertEqual(bonds.map { [$0.0, $0.1] }, [[0, 1], [1, 2]])
        XCTAssertNil(try PluginLoader.load(path: old.path).makeSystem().bonds())
        XCTAssertNil(try PluginLoader.load(path: plain.path).makeSystem().bonds())
    }

    func testUnknownPluginListsTheKnownOnes() throws {
        let directory = TestPaths.temporaryDirectory("known")
        _ = try buildHarmonicPlugin(in: directory)
        let discovery = PluginLoader.discover(in: [directory.path])
        XCTAssertThrowsError(try discovery.plugin(named: "lennard")) { error in
            XCTAssertEqual("\(error)", "unknown plugin 'lennard' (known: harmonic)")
        }
    }

    func testSearchPathOrderAndEnvironment() {
        let dirs = PluginLoader.searchDirectories(explicit: ["/a", "/b"], environment: ["ENSEMBLE_PLUGIN_PATH": "/c::/a:/d"])
        XCTAssertEqual(Array(dirs.prefix(4)), ["/a", "/b", "/c", "/d"])
        XCTAssertEqual(dirs.count, 5) // + the executable's own directory
    }
}

final class TranslationInvarianceTests: XCTestCase {
    func testHarmonicWellIsNotTranslationInvariantEvenAtItsMinimum() throws {
        let system = try PluginLoader.load(path: try buildHarmonicPlugin().path).makeSystem(parameters: "particles=3")
        XCTAssertFalse(try system.isTranslationInvariant(at: [Double](repeating: 0, count: 9)))
        let single = try PluginLoader.load(path: try buildHarmonicPlugin().path).makeSystem(parameters: "particles=1")
        XCTAssertFalse(try single.isTranslationInvariant(at: [0, 0, 0]))
    }
}
