import Foundation
import PluginHost
import TestSupport
import XCTest

/// `destroy()` is called exactly once for every `create()` (issue 23: the host destroyed a system
/// twice when it refused the plugin's particle count, dimension, length unit or box, which is
/// "double free or corruption" in every plugin that frees memory).
final class PluginLifetimeTests: XCTestCase {
    /// A plugin that counts create() and destroy() calls (destroy frees nothing, so a second call
    /// shows as a count instead of a crash) and answers with what `bad=` asks for.
    static let countingSource = """
        #include "ensemble_plugin.h"
        #include <stdlib.h>
        #include <string.h>
        typedef struct { int bad; } sys;
        static int creates = 0, destroys = 0;
        int32_t counting_creates(void) { return creates; }
        int32_t counting_destroys(void) { return destroys; }
        static ensemble_system *create(const char *p, char *e, size_t c) {
            (void)e; (void)c;
            static sys systems[64];
            sys *s = &systems[creates % 64];
            s->bad = strstr(p, "bad=particles") ? 1 : strstr(p, "bad=dimension") ? 2
                   : strstr(p, "bad=unit") ? 3 : strstr(p, "bad=box") ? 4 : 0;
            creates++;
            return (ensemble_system *)s;
        }
        static void destroy(ensemble_system *s) { (void)s; destroys++; }
        static int32_t count(const ensemble_system *s) { return ((const sys *)s)->bad == 1 ? 0 : 2; }
        static int32_t dim(const ensemble_system *s) { return ((const sys *)s)->bad == 2 ? 7 : 3; }
        static double unit(const ensemble_system *s) { return ((const sys *)s)->bad == 3 ? -1.0 : 1.0; }
        static int32_t box(const ensemble_system *s, double *edges) {
            if (((const sys *)s)->bad != 4) return 0;
            edges[0] = 1; edges[1] = -2; edges[2] = 1; return 1;
        }
        static int32_t evaluate(const ensemble_system *s, int64_t b, const double *x, double *u, double *g, char *e, size_t c) {
            (void)s; (void)x; (void)e; (void)c;
            for (int64_t i = 0; i < b; i++) u[i] = 0;
            if (g) for (int64_t i = 0; i < b * 6; i++) g[i] = 0;
            return 0;
        }
        static ensemble_plugin table = {
            .abi_version = ENSEMBLE_PLUGIN_ABI_VERSION, .struct_size = sizeof(ensemble_plugin),
            .name = "counting", .version = "0.1", .description = "counts create/destroy", .parameters_help = "bad=...",
            .create = create, .destroy = destroy, .particle_count = count, .dimension = dim, .evaluate = evaluate,
            .box = box, .length_unit_angstrom = unit,
        };
        const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
        """

    func testDestroyIsCalledOncePerCreateWhenTheHostRefusesTheSystem() throws {
        let directory = TestPaths.temporaryDirectory("counting")
        let source = directory.appendingPathComponent("counting.c")
        try Self.countingSource.write(to: source, atomically: true, encoding: .utf8)
        let library = try compileCPlugin(source: source, name: "counting", in: directory)
        let plugin = try PluginLoader.load(path: library.path)
        // The same handle dlopen gave the loader: read the plugin's own counters.
        let handle = try XCTUnwrap(dlopen(library.path, RTLD_NOW | RTLD_LOCAL))
        typealias Counter = @convention(c) () -> Int32
        let creates = unsafeBitCast(try XCTUnwrap(dlsym(handle, "counting_creates")), to: Counter.self)
        let destroys = unsafeBitCast(try XCTUnwrap(dlsym(handle, "counting_destroys")), to: Counter.self)

        for (bad, expected) in [("particles", "particle_count is 0"), ("dimension", "dimension is 7"),
                                ("unit", "length_unit_angstrom is -1"), ("box", "box edges")] {
            let before = (creates(), destroys())
            XCTAssertThrowsError(try plugin.makeSystem(parameters: "bad=\(bad)"), bad) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
                XCTAssertTrue("\(error)".contains("counting"), "the message names the plugin: \(error)")
            }
            XCTAssertEqual(creates() - before.0, 1, bad)
            XCTAssertEqual(destroys() - before.1, 1, "bad=\(bad): destroy() must be called exactly once")
        }

        // An accepted system is destroyed once, when the host lets it go.
        let before = (creates(), destroys())
        do {
            let system = try plugin.makeSystem(parameters: "")
            withExtendedLifetime(system) {
                XCTAssertEqual(system.particleCount, 2)
                XCTAssertEqual(destroys(), before.1, "not destroyed while in use")
            }
        }
        XCTAssertEqual(creates() - before.0, 1)
        XCTAssertEqual(destroys() - before.1, 1, "destroyed once when released")
    }
}
