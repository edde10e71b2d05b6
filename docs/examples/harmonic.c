/*
 * harmonic.c — a complete, minimal `ensemble` energy plugin in plain C.
 *
 *   u(x) = k / (2 kT) · Σ_i |x_i|²      (an isotropic harmonic well)
 *   u(x) = k / (2 kT) · Σ_i |x_i − x̄|²  with centred=1 (x̄ the particle mean: translation
 *                                          invariant, a Gaussian in the zero-mean subspace)
 *
 * Build:  cc -O2 -shared -fPIC -I<repo>/Sources/EnsemblePluginABI/include \
 *            harmonic.c -o libharmonic.so
 * Use:    ensemble plugins --plugin-dir .
 *         ensemble sample --plugin-dir . --plugin harmonic --param k=2 ...
 *
 * Every coordinate is Gaussian with variance kT/k: the tests sample it with
 * MALA and parallel tempering and check ⟨x²⟩ = kT/k.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensemble_plugin.h"

struct ensemble_system {
    int32_t particles, dimension, centred;
    double k, kT;
};

/* Parse "key=value" pairs separated by ';' or whitespace. */
static ensemble_system *create(const char *parameters, char *error, size_t capacity) {
    ensemble_system s = {1, 3, 0, 1.0, 1.0};
    char *copy = strdup(parameters ? parameters : "");
    char *save = NULL;
    for (char *token = strtok_r(copy, "; \t\n", &save); token; token = strtok_r(NULL, "; \t\n", &save)) {
        char *eq = strchr(token, '=');
        if (!eq) { snprintf(error, capacity, "malformed parameter '%s': expected key=value", token); free(copy); return NULL; }
        *eq = '\0';
        const char *key = token, *value = eq + 1;
        char *end = NULL;
        double v = strtod(value, &end);
        if (end == value || *end != '\0') {
            snprintf(error, capacity, "parameter '%s': '%s' is not a number", key, value); free(copy); return NULL;
        }
        if (strcmp(key, "k") == 0 && v > 0) s.k = v;
        else if (strcmp(key, "temperature") == 0 && v > 0) s.kT = v;
        else if (strcmp(key, "particles") == 0 && v >= 1) s.particles = (int32_t)v;
        else if (strcmp(key, "dimension") == 0 && v >= 1 && v <= 3) s.dimension = (int32_t)v;
        else if (strcmp(key, "centred") == 0 && (v == 0 || v == 1)) s.centred = (int32_t)v;
        else {
            snprintf(error, capacity, "unknown or out-of-range parameter '%s' (valid: k>0, temperature>0, particles>=1, dimension 1-3, centred 0/1)", key);
            free(copy); return NULL;
        }
    }
    free(copy);
    ensemble_system *system = malloc(sizeof *system);
    *system = s;
    return system;
}

static void destroy(ensemble_system *s) { free(s); }
static int32_t particle_count(const ensemble_system *s) { return s->particles; }
static int32_t dimension(const ensemble_system *s) { return s->dimension; }
static int32_t box(const ensemble_system *s, double *edges) { (void)s; (void)edges; return 0; }
static double length_unit(const ensemble_system *s) { (void)s; return 1.0; }

/* Reentrant: reads the system, writes only the caller's arrays. */
static int32_t evaluate(const ensemble_system *s, int64_t batch, const double *x, double *u, double *grad,
                        char *error, size_t capacity) {
    (void)error; (void)capacity;
    const int64_t stride = (int64_t)s->particles * s->dimension;
    const double scale = s->k / s->kT;
    for (int64_t b = 0; b < batch; b++) {
        double mean[3] = {0, 0, 0}, sum = 0;
        if (s->centred)
            for (int64_t i = 0; i < stride; i++) mean[i % s->dimension] += x[b * stride + i] / s->particles;
        for (int64_t i = 0; i < stride; i++) {
            const double xi = x[b * stride + i] - mean[i % s->dimension];
            sum += xi * xi;
            if (grad) grad[b * stride + i] = scale * xi;
        }
        u[b] = 0.5 * scale * sum;
    }
    return 0;
}

static const ensemble_plugin table = {
    .abi_version = ENSEMBLE_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(ensemble_plugin),
    .name = "harmonic",
    .version = "1.0.0",
    .description = "Isotropic harmonic well u = k|x|^2 / (2 kT): a plugin with a known answer",
    .parameters_help = "k=K            spring constant, energy/length^2 (default 1)\n"
                       "temperature=T  kT in energy units (default 1)\n"
                       "particles=N    number of particles (default 1)\n"
                       "dimension=D    1, 2 or 3 (default 3)\n"
                       "centred=1      u = k|x - mean|^2 / (2 kT): translation invariant (default 0)",
    .create = create,
    .destroy = destroy,
    .particle_count = particle_count,
    .dimension = dimension,
    .box = box,
    .length_unit_angstrom = length_unit,
    .evaluate = evaluate,
    .atom = NULL,              /* optional: the host then writes generic atoms */
    .initial_positions = NULL, /* optional: the host then starts at the origin */
};

const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
