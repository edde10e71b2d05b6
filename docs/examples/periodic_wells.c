/*
 * periodic_wells.c — a periodic `ensemble` plugin with a known partition function.
 *
 *   u(x) = κ Σ_i Σ_a (1 − cos(2π x_ia / L))      on the torus [0, L)^d per particle
 *
 * Every coordinate is an independent von Mises variable, so
 *   Z = (L e^{−κ} I₀(κ))^{n·d},   log Z = n·d·(log L − κ + log I₀(κ));
 * κ = 0 is the uniform distribution on the box (log Z = n·d·log L). The tests use it to
 * check the importance weights of the diffusion samplers on the torus.
 *
 * Build:  cc -O2 -shared -fPIC -I<repo>/Sources/EnsemblePluginABI/include \
 *            periodic_wells.c -o libperiodic-wells.so -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ensemble_plugin.h"

struct ensemble_system {
    int32_t particles, dimension;
    double kappa, edge;
};

static ensemble_system *create(const char *parameters, char *error, size_t capacity) {
    ensemble_system s = {2, 2, 1.0, 3.0};
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
        if (strcmp(key, "kappa") == 0 && v >= 0) s.kappa = v;
        else if (strcmp(key, "box") == 0 && v > 0) s.edge = v;
        else if (strcmp(key, "particles") == 0 && v >= 1) s.particles = (int32_t)v;
        else if (strcmp(key, "dimension") == 0 && v >= 1 && v <= 3) s.dimension = (int32_t)v;
        else {
            snprintf(error, capacity, "unknown or out-of-range parameter '%s' (valid: kappa>=0, box>0, particles>=1, dimension 1-3)", key);
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
static int32_t box(const ensemble_system *s, double *edges) {
    for (int32_t a = 0; a < s->dimension; a++) edges[a] = s->edge;
    return 1;
}
static double length_unit(const ensemble_system *s) { (void)s; return 1.0; }

static int32_t evaluate(const ensemble_system *s, int64_t batch, const double *x, double *u, double *grad,
                        char *error, size_t capacity) {
    (void)error; (void)capacity;
    const int64_t stride = (int64_t)s->particles * s->dimension;
    const double w = 2 * M_PI / s->edge;
    for (int64_t b = 0; b < batch; b++) {
        double sum = 0;
        for (int64_t i = 0; i < stride; i++) {
            const double xi = x[b * stride + i];
            sum += s->kappa * (1 - cos(w * xi));
            if (grad) grad[b * stride + i] = s->kappa * w * sin(w * xi);
        }
        u[b] = sum;
    }
    return 0;
}

static const ensemble_plugin table = {
    .abi_version = ENSEMBLE_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(ensemble_plugin),
    .name = "periodic-wells",
    .version = "1.0.0",
    .description = "Von Mises wells on the torus, u = kappa sum(1 - cos(2 pi x / L)): known log Z",
    .parameters_help = "kappa=K        well depth in kT (default 1; 0: uniform)\n"
                       "box=L          cubic box edge, length (default 3)\n"
                       "particles=N    number of particles (default 2)\n"
                       "dimension=D    1, 2 or 3 (default 2)",
    .create = create,
    .destroy = destroy,
    .particle_count = particle_count,
    .dimension = dimension,
    .box = box,
    .length_unit_angstrom = length_unit,
    .evaluate = evaluate,
    .atom = NULL,
    .initial_positions = NULL,
};

const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
