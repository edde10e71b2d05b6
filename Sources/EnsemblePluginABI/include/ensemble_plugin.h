/*
 * ensemble_plugin.h — the energy-plugin ABI of `ensemble`.
 *
 * This header is the whole public contract between the `ensemble` host and an
 * energy plugin. A plugin is a shared library (.so) that exports exactly one
 * symbol, `ensemble_plugin_entry`, returning a pointer to a static
 * `ensemble_plugin` table. Only plain C data crosses the boundary.
 *
 * Versioning: ENSEMBLE_PLUGIN_ABI_VERSION is the major version; the host
 * refuses a plugin whose `abi_version` differs. Fields are only ever APPENDED
 * to the structs below (never reordered or removed); `struct_size` tells the
 * host how many fields a plugin knows about, and ENSEMBLE_PLUGIN_ABI_MINOR
 * counts the appended revisions.
 *
 * Units: the plugin works in its own length unit; `length_unit_angstrom`
 * converts it to Å for trajectory output. Energies crossing the ABI are
 * REDUCED energies u = U / kT (dimensionless), gradients are ∇u in inverse
 * plugin length units.
 *
 * Layouts: positions and gradients are row-major double arrays of shape
 * [batch][particle][dimension].
 *
 * A complete guide with a minimal C and Swift plugin is in docs/plugins.md.
 */
#ifndef ENSEMBLE_PLUGIN_H
#define ENSEMBLE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Major ABI version. The host refuses plugins with a different value. */
#define ENSEMBLE_PLUGIN_ABI_VERSION 1
/** Minor revision: counts fields appended since version 1.0. */
#define ENSEMBLE_PLUGIN_ABI_MINOR 1
/** Name of the one symbol a plugin exports. */
#define ENSEMBLE_PLUGIN_ENTRY_SYMBOL "ensemble_plugin_entry"

/** Opaque system instance, created and owned by the plugin. */
typedef struct ensemble_system ensemble_system;

/** Topology of one particle (all strings NUL-terminated, truncated to fit). */
typedef struct ensemble_atom {
    char name[8];            /**< atom name, e.g. "CA" */
    char element[4];         /**< element symbol, e.g. "C", "Ar" */
    char residue[8];         /**< residue name, e.g. "ALA" */
    int32_t residue_number;  /**< 1-based residue number */
    double mass;             /**< mass in g/mol (amu) */
} ensemble_atom;

typedef struct ensemble_plugin {
    /** Must equal ENSEMBLE_PLUGIN_ABI_VERSION. */
    uint32_t abi_version;
    /** sizeof(ensemble_plugin) as the plugin was compiled. */
    uint32_t struct_size;
    /** Unique, non-empty name, e.g. "lennard-jones". */
    const char *name;
    /** Plugin version string, e.g. "1.0.0". */
    const char *version;
    /** One-line description. */
    const char *description;
    /** Help for the parameters: each key, meaning, unit and default. */
    const char *parameters_help;

    /**
     * Create a system from `key=value` pairs separated by ';' or whitespace.
     * On failure return NULL and write a NUL-terminated message (naming the
     * offending key and listing the valid ones) into error[0..error_capacity).
     */
    ensemble_system *(*create)(const char *parameters, char *error, size_t error_capacity);
    /** Free a system made by create. */
    void (*destroy)(ensemble_system *system);
    /** Number of particles n. */
    int32_t (*particle_count)(const ensemble_system *system);
    /** Spatial dimension d (2 or 3). */
    int32_t (*dimension)(const ensemble_system *system);
    /**
     * Periodic box: returns 1 and writes `dimension` edge lengths (plugin
     * length units) when periodic, else returns 0 and writes nothing.
     */
    int32_t (*box)(const ensemble_system *system, double *edge_lengths);
    /** Length of one plugin length unit in Å (e.g. 3.405 for argon σ). */
    double (*length_unit_angstrom)(const ensemble_system *system);
    /**
     * Reduced energies u = U/kT of `batch` configurations.
     * positions: [batch][n][d]; energies: [batch]; gradients: [batch][n][d]
     * or NULL (then only energies are computed). Returns 0 on success;
     * otherwise non-zero with a message in error. Must be reentrant: the host
     * may call it concurrently from several threads on the same system.
     */
    int32_t (*evaluate)(const ensemble_system *system, int64_t batch,
                        const double *positions, double *energies, double *gradients,
                        char *error, size_t error_capacity);
    /** Optional (may be NULL): topology of particle `index`; returns 0 on success. */
    int32_t (*atom)(const ensemble_system *system, int32_t index, ensemble_atom *out);
    /** Optional (may be NULL): a sensible start configuration [n][d]; returns 0 on success. */
    int32_t (*initial_positions)(const ensemble_system *system, double *positions);

    /* ---- minor 1 (the host reads these only when struct_size covers them) ---- */

    /**
     * Optional (may be NULL): the covalent bonds of a molecule. Returns the
     * number of bonds and writes min(count, capacity) of them as 0-based
     * particle index pairs into pairs[2*k], pairs[2*k+1] (call with capacity 0
     * to ask for the count); a negative return is an error. The neural
     * samplers build their bond-graph prior and edge features from it.
     */
    int32_t (*bonds)(const ensemble_system *system, int32_t *pairs, int32_t capacity);
} ensemble_plugin;

/** The one symbol every plugin exports. */
typedef const ensemble_plugin *(*ensemble_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* ENSEMBLE_PLUGIN_H */
